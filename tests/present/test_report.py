"""The report's text: every number it prints comes from the records it is given, and user strings are escaped.

Fits come from metarepro.stats.rma on dat.molloy2014 (tests/reference/metafor_reference_extra.json), whose values are
tested against metafor elsewhere; here the source of truth is the pooled record the report is built from.
"""

import hashlib
import re

import numpy as np
import pandas as pd
from conftest import load_reference

from metarepro.jobs.overview import provenance
from metarepro.pipeline.analysis import Settings, pooled_record
from metarepro.present.report import AnalysisSection, fit_block, render_report, row_account
from metarepro.stats.rma import rma

MOLLOY = next(d for d in load_reference("metafor_reference_extra.json")["datasets"] if d["name"] == "molloy2014_ZCOR")
YI, VI = np.array(MOLLOY["escalc"]["yi"]), np.array(MOLLOY["escalc"]["vi"])
EVIL = '<script>alert("x")</script> & Co'


def section(name="a1", title="Marker A, r", measure="ZCOR", study=None, excluded=2):
    k = len(YI)
    fit = rma(YI, VI, "REML", "knha")
    record = {**pooled_record(fit, Settings(measure=measure, test="knha")), "n_cases": 100.0, "n_controls": 90.0}
    effects = pd.DataFrame({
        "line": np.arange(k + excluded) + 2, "study_id": [f"s{i}" for i in range(k + excluded)],
        "study": [study or f"Study {i}" for i in range(k + excluded)], "input": "r+n", "conversion": "",
        "yi": [*YI, *[np.nan] * excluded], "vi": [*VI, *[np.nan] * excluded],
        "weight": [*fit.weights, *[np.nan] * excluded], "included": [True] * k + [False] * excluded,
        "reason": [""] * k + ["study_id s1 already contributes line 3; pool one row per sample"] * excluded,
        "checks": ["SD < 0.1×mean: an SEM reported as SD?"] + [""] * (k + excluded - 1),
    })  # fmt: skip
    return AnalysisSection(name, title, record, effects, "<svg></svg>", config={"where": {"marker": "IL-6"}})


def test_fit_block_prints_the_record_like_print_rma():
    s = section()
    text = fit_block(s.pooled)
    r = s.pooled
    assert f"Random-Effects Model (k = {r['k']}; tau^2 estimator: REML)" in text
    assert f"{r['tau2']:.4f} (SE = {r['tau2_se']:.4f})" in text
    assert f"Q(df = {r['k'] - 1}) = {r['q']:.4f}" in text
    assert re.search(rf"{r['estimate']:.4f}\s+{r['se']:.4f}\s+{r['zval']:.4f}\s+{r['k'] - 1}", text)
    assert f"{np.tanh(r['estimate']):.4f}" in text  # ZCOR back-transformed to r


def test_headline_states_result_with_caveats_and_back_transformed_scale():
    s = section()
    page = render_report([s])
    r = s.pooled
    lo, hi = np.tanh(r["ci_low"]), np.tanh(r["ci_high"])
    sentence = re.search(r'<ul class="lede"><li>(.*?)</li>', page, flags=re.S).group(1)
    assert f"correlation r {np.tanh(r['estimate']):.2f} (95% CI {lo:.2f} to {hi:.2f})" in sentence
    assert f"k = {r['k']}, 190 participants" in sentence
    assert "flagged" not in sentence  # a soft check ("SD < 0.1×mean") is not a quality flag
    assert f"I² = {r['i2']:.0f}%" in sentence


def test_row_account_counts_every_row_and_collapses_excluded():
    s = section(excluded=3)
    html = row_account(s.effects)
    assert f"<li>{len(s.effects)} rows selected from the sheet</li><li>{len(YI)} pooled</li>" in html
    assert "<li>3 excluded: study_id … already contributes line …</li>" in html
    assert "<details><summary>3 excluded rows</summary>" in html
    assert "SEM reported as SD" in html  # flags shown beside their rows


def test_every_user_string_is_escaped():
    s = section(name="evil", title=EVIL, study=EVIL)
    page = render_report([s], labels={"cases": EVIL})
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co" in page  # MarkupSafe's entities


def test_five_parts_in_order_and_self_contained():
    repro = pd.DataFrame([{
        "analysis": "a1", "published_id": "p1", "source": "Someone 2020", "marker": "IL-6", "measure_ours": "ZCOR",
        "measure_published": "ZCOR", "same_scale": True, "estimate_ours": 0.1, "ci_low_ours": 0.0,
        "ci_high_ours": 0.2, "estimate_published": 0.12, "ci_low_published": 0.05, "ci_high_published": 0.2,
        "k_ours": 16, "k_published": 10, "verdict": "discrepant, same conclusion", "verdict_reason": "beyond 0.1",
    }])  # fmt: skip
    page = render_report([section()], repro, provenance={"software": {"metarepro": "x"}, "files": {"c.yaml": "ab"}})
    positions = [page.index(f'id="{part}"') for part in ("headline", "reproduction", "analyses", "methods",
                                                          "provenance")]  # fmt: skip
    assert positions == sorted(positions)
    assert '<details class="analysis" id="a1">' in page
    assert '<span class="verdict-discrepant-same-conclusion">discrepant, same conclusion</span>' in page
    for loads_something in ('src="http', 'href="http', "url(http", "@import", "<script src", "<link "):
        assert loads_something not in page


def test_methods_paragraph_follows_the_settings():
    page = render_report([section()])
    methods = page[page.index('id="methods"'):]
    assert "restricted maximum likelihood" in methods and "Knapp–Hartung" in methods
    assert "Fisher r-to-z" in methods and "95% level" in methods
    assert "Viechtbauer W (2005)" in methods  # the REML reference


def test_provenance_hashes_the_inputs(tmp_path):
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("study_id,study\ns1,A\n")
    record = provenance(config_files=[], sheets=[sheet])
    assert record["files"][str(sheet)] == hashlib.sha256(b"study_id,study\ns1,A\n").hexdigest()
    assert {"metarepro", "Python", "numpy", "matplotlib"} <= set(record["software"])


def test_capped_tau2_bound_is_shown_as_a_bound_not_a_value():
    s = section()
    text = fit_block({**s.pooled, "tau2_ci_high": 1e6, "tau2_ci_high_capped": True})
    assert "&gt; 1000000.0000]" in text and "I^2 [" in text


def test_the_report_says_once_near_the_top_what_the_data_are(tmp_path):
    """Issue 17: the page states, once and near the top, what the data are: per sheet the rows, samples, sources
    and markers counted from the file (here 4 rows, 3 samples, 2 sources, 2 markers) and the config's data_note."""
    from metarepro.jobs.overview import data_summary

    sheet = tmp_path / "s.csv"
    sheet.write_text("study_id,marker,source_url,doi\na,IL-6,http://x,\na,CRP,http://x,\nb,IL-6,,10.1/y\nc,IL-6,,\n")
    summary = data_summary({"one": {"data": str(sheet)}, "two": {"data": str(sheet)}})
    assert summary == [{"sheet": str(sheet), "rows": 4, "samples": 3, "sources": 2, "markers": ["CRP", "IL-6"]}]
    page = render_report([section()], data=(summary, "Abstract-level extraction."))
    paragraph = re.search(r'<p id="data">(.*?)</p>', page).group(1)
    assert paragraph == (f"<strong>Data</strong>: 4 rows (3 samples from 2 sources, markers CRP, IL-6) in {sheet}. "
                         "Abstract-level extraction.")
    assert page.count('id="data"') == 1 and page.index('id="data"') < page.index('id="headline"')


def test_the_reproduction_section_opens_with_the_counts():
    """Issue 17: the section's first sentence counts the verdicts, the updates and each study-level comparison."""
    from metarepro.present.report import reproduction_counts

    table = pd.DataFrame({"verdict": ["reproduced, approximately", "meaningfully different", "meaningfully different",
                                      "not comparable"],
                          "comparison_type": ["update", "update", None, "reproduction"]})  # fmt: skip
    text = reproduction_counts(table, [("q", "2 of 13 studies of Qin 2016 agree with ours within 0.1.")])
    assert text == ("4 comparisons of our primary fits with published results: 1 not comparable, 1 reproduced, "
                    "approximately, 2 meaningfully different; 2 of them are updates (some of our pooled studies "
                    "appeared after the published search ended). Study by study (q): 2 of 13 studies of Qin 2016 "
                    "agree with ours within 0.1.")


def test_inlined_figures_keep_their_references_with_ids_unique_on_the_page():
    """Caught: matplotlib writes alike ids in every figure (figure_1, patch_1, ...; markers and clip paths named by a
    hash of their content), so the inlined figures repeated 408 ids. Two copies of one figure on a page: each
    keeps its own references, renamed <uid>-1, <uid>-2 in order of first reference; ids nothing refers to are
    dropped; the title names the image."""
    from metarepro.present.report import figure_html

    svg = ('<?xml version="1.0"?>\n<svg width="10pt" height="5pt">\n  <defs><path id="m1a" d="M0 0"/>'
           '<clipPath id="p2b"><rect/></clipPath></defs>\n  <g id="figure_1"><g clip-path="url(#p2b)">'
           '<use xlink:href="#m1a"/></g></g>\n</svg>')  # fmt: skip
    one, two = (str(figure_html(svg, uid, f"Forest plot: {uid}", "what it shows")) for uid in ("a-forest", "b-forest"))
    assert one == ('<figure class="figure"><svg width="10pt" height="5pt" role="img" aria-labelledby="a-forest-title">'
                   '<title id="a-forest-title">Forest plot: a-forest</title><defs><path id="a-forest-2" d="M0 0"/>'
                   '<clipPath id="a-forest-1"><rect/></clipPath></defs><g><g clip-path="url(#a-forest-1)">'
                   '<use xlink:href="#a-forest-2"/></g></g></svg><figcaption class="muted">what it shows</figcaption>'
                   "</figure>")  # fmt: skip
    ids = re.findall(r' id="([^"]*)"', one + two)
    assert len(ids) == len(set(ids)) == 6


def model_results(text):
    """The "Model Results:" block of a printed fit, through the significance codes."""
    text = text[text.index("Model Results:"):]
    return text[: text.index("Signif. codes:")].rstrip() + text[text.index("Signif. codes:"):].split("\n")[0]


def test_the_fit_block_prints_model_results_as_the_fit_s_print_checked_against_r():
    """One print layout: the report's "Model Results" table is metarepro._core.printing's, the one
    tests/core/test_printing.py compares with metafor's print (tests/reference/print/*.txt), letter for letter."""
    import html

    for test in ("z", "knha"):
        fit = rma(YI, VI, "REML", test)
        block = html.unescape(re.sub(r"<[^>]+>", "", str(fit_block(pooled_record(fit, Settings(test=test))))))
        assert model_results(block) == model_results(str(fit)), test
        assert ("tval" in model_results(block)) == (test == "knha")


def test_the_fit_block_of_mh_and_peto_fits_is_metafors_print_rma_mh_and_print_rma_peto(monkeypatch):
    """The linde2005 example's rma.mh RR fit (config/examples/linde2005.yaml): the report's Fit block is R's own
    print.rma.mh output (tests/reference/print/mh_rr_linde2005.txt, tests/reference/generate_binary_reference.R),
    then metarepro's warning; an MH odds ratio adds the CMH and Tarone tests, a Peto fit prints print.rma.peto."""
    import html

    from print_reference import assert_prints_like_metafor

    from metarepro.jobs.pool import run_analysis
    from tests.conftest import REPO

    monkeypatch.chdir(REPO)
    linde = {"title": "x", "data": "data/raw/linde2005_st_johns_wort.csv", "columns": {
        "study_id": "id", "events_cases": "ai", "n_cases": "n1i", "events_controls": "ci", "n_controls": "n2i"}}

    def block(**settings):
        text = html.unescape(re.sub(r"<[^>]+>", "", str(fit_block(run_analysis(linde["data"], {**linde, **settings})
                                                                  .pooled))))  # fmt: skip
        printed, _, warning = text.strip().partition("\nWarning: ")
        return printed.strip(), warning

    printed, warning = block(measure="RR", fit="rma.mh")
    assert_prints_like_metafor(printed, "mh_rr_linde2005")
    assert warning.startswith("1 pooled table has no estimate of its own")
    # the OR and Peto blocks are the library's print of the same fit (its layout checked against R's print of
    # dat.bcg's MH OR with both tests and Peto fit in tests/stats/test_binary.py), not a copy of it
    sheet = pd.read_csv(REPO / linde["data"])
    tables = {name: sheet[column].to_numpy(dtype=float) for name, column in linde["columns"].items()}
    cells = {"ai": tables["events_cases"], "n1i": tables["n_cases"], "ci": tables["events_controls"],
             "n2i": tables["n_controls"]}  # fmt: skip
    import warnings

    with warnings.catch_warnings():  # metafor's "Some yi/vi values are NA." (the double-zero table)
        warnings.simplefilter("ignore")
        from metarepro.stats.mh import rma_mh
        from metarepro.stats.peto import rma_peto

        used = np.isfinite(cells["ai"])  # the two trials without counts are incomplete rows (metafor omits them)
        cells = {k: v[used] for k, v in cells.items()}
        odds, peto = str(rma_mh(**cells, measure="OR")), str(rma_peto(**cells))
    # R's rma.mh(..., measure = "OR") on dat.linde2005 (tests/reference/generate_binary_reference.R): CMH and Tarone
    mh = next(f for f in load_reference("binary_reference.json")["rma_mh"]
              if f["dataset"] == "linde2005" and f["measure"] == "OR" and not f["settings"])  # fmt: skip
    assert mh["MHp"] < 1e-4 and f"CMH = {mh['MH']:.4f}, df = 1,  p-val < 0.0001" in odds  # 100.4993
    assert f"X^2 = {mh['TA']:.4f}, df = {mh['k.pos'] - 1}" in odds  # 101.3809, df = 22
    assert block(measure="OR", fit="rma.mh")[0] == odds.strip()
    assert block(measure="OR", fit="rma.peto")[0] == peto.strip()


def test_small_study_tests_of_an_odds_ratio_carry_the_handbooks_caveat(monkeypatch):
    """The linde2005 example's OR (rma): the small-study section says why Egger's test misleads with odds ratios."""
    from metarepro.jobs.pool import run_analysis
    from metarepro.jobs.sensitivity import analysis_rows, publication_bias
    from metarepro.present.report import _bias
    from metarepro.stats.bias import ODDS_RATIO_NOTE
    from tests.conftest import REPO

    monkeypatch.chdir(REPO)
    linde = {"title": "x", "data": "data/raw/linde2005_st_johns_wort.csv", "measure": "OR", "columns": {
        "study_id": "id", "events_cases": "ai", "n_cases": "n1i", "events_controls": "ci", "n_controls": "n2i"}}
    result = run_analysis(linde["data"], linde)
    record = publication_bias(analysis_rows(result), result.settings).record
    assert record["odds_ratio_note"] == ODDS_RATIO_NOTE
    assert "tests are biased toward false positives" in str(_bias(record, "OR"))
    rr = run_analysis(linde["data"], {**linde, "measure": "RR"})
    assert "odds_ratio_note" not in publication_bias(analysis_rows(rr), rr.settings).record
