"""Proportions on the reader's scale in every figure of an analysis (issue 19): the leave-one-out, cumulative and
funnel figures of a Freeman-Tukey (PFT) analysis are back-transformed with the pooled rows' harmonic-mean n, as the
main forest and metafor's ``transf.ipft.hm`` with ``targs = list(ni = dat$ni)``; the atlas of several analyses, which
has no one n, says it is on the Freeman-Tukey scale; the summary-of-findings row and the reporter sentence show
pooled.json's back-transformed ``*_prop``, which tests/pipeline/test_binary_pipeline.py checks against R."""

import numpy as np
import pytest
from figure_readback import assert_rows_match, drawn_rows
from tolerances import FORMULA

from metarepro.jobs.pool import run_analysis
from metarepro.jobs.sensitivity import analysis_rows, diagnostics
from metarepro.pipeline import findings as fd
from metarepro.present.plots.diagnostics import funnel_plot
from metarepro.present.plots.forest import counts_scale
from metarepro.present.plots.overview import atlas_plot, atlas_rows
from metarepro.present.plots.style import Scale, axis_label
from metarepro.stats import effects_binary as eb
from tests.conftest import REPO

# Moore 1998's treated arms as proportions (tests/pipeline/test_binary_pipeline.py, MOORE_TREATED)
PFT = {"title": "pft", "data": "data/raw/moore1998_topical_nsaids.csv", "measure": "PFT",
       "columns": {"study_id": "id", "study": "author", "events": "Ee", "n": "Ne"}}  # fmt: skip


@pytest.fixture(scope="module")
def pft():
    import os

    here = os.getcwd()
    os.chdir(REPO)
    try:
        result = run_analysis(PFT["data"], PFT)
        rows = analysis_rows(result)
        return result, rows, diagnostics(rows, result.settings)
    finally:
        os.chdir(here)


def harmonic(rows):
    n = rows["n"].to_numpy(dtype=float)
    return 1 / np.mean(1 / n)  # metafor's transf.ipft.hm: 1/mean(1/ni)


def test_leave_one_out_and_cumulative_rows_are_percentages_of_their_tables(pft):
    result, rows, out = pft
    scale = counts_scale(rows, "PFT")
    assert scale.ni == pytest.approx(harmonic(rows), rel=FORMULA) and scale.percent
    for name, sign in (("leave1out", "−"), ("cumulative", "+")):
        table, fig = out.tables[name], out.figures[name]
        labels = [f"{sign} {s}" for s in table["study"]]
        drawn = assert_rows_match(fig, table, labels, "PFT", scale=scale)
        # the printed numbers, read back: metafor's transf.ipft.hm of the table's own estimates, in percent
        first = table.iloc[0]
        expected = 100 * eb.transf_ipft_hm(np.array([first["estimate"]]), np.array([harmonic(rows)]))[0]
        assert drawn[0]["text"].startswith(f"{expected:.1f}%".replace("-", "−"))
        assert fig.axes[0].get_xlabel() == "Proportion (%, Freeman-Tukey scale)"
        assert all(t.get_text().endswith("%") for t in fig.axes[0].get_xticklabels())


def test_funnel_ticks_and_pooled_line_in_percent(pft):
    result, rows, _ = pft
    scale = counts_scale(rows, "PFT")
    fig = funnel_plot(rows["yi"], rows["vi"], estimate=result.pooled["estimate"], measure="PFT", scale=scale)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Proportion (%, Freeman-Tukey scale)"
    ticks = ax.get_xticks()
    shown = [t.get_text() for t in ax.get_xticklabels()]
    back = eb.transf_ipft_hm(np.asarray(ticks), np.array([harmonic(rows)]))
    assert shown == [f"{100 * v:.3g}%" for v in back]
    legend = [t.get_text() for t in ax.get_legend().get_texts()] + [
        t.get_text() for t in ax.artists[0].get_texts()]  # fmt: skip
    assert f"pooled estimate {100 * result.pooled['estimate_prop']:.3g}%" in legend  # 71.3%


def test_without_the_studies_n_a_pft_figure_says_its_scale_not_percent():
    assert not Scale("PFT").percent
    assert axis_label("PFT") == "Freeman-Tukey transformed proportion (double arcsine; not %)"
    assert axis_label("PFT", scale=Scale("PFT", ni=50.0)) == "Proportion (%, Freeman-Tukey scale)"
    assert axis_label("PLO") == "Proportion (%, logit scale)"  # back-transformed without n: in %


def test_atlas_of_a_pft_analysis_is_on_its_own_scale(pft):
    result, _, _ = pft
    tables = atlas_rows({"pft": result.pooled}, {"pft": "PFT"})
    (key, table), = tables.items()
    fig = atlas_plot(table, key)
    assert fig.axes[0].get_xlabel() == "Freeman-Tukey transformed proportion (double arcsine; not %)"
    assert "%" not in drawn_rows(fig)[0]["text"]


def test_summary_of_findings_and_reporter_show_the_back_transformed_proportion(pft):
    result, _, _ = pft
    p = result.pooled
    row = fd.sof_row("Q", "pft", p, effects=result.effects)
    assert [row.estimate, row.ci_low, row.ci_high] == [p["estimate_prop"], p["ci_low_prop"], p["ci_high_prop"]]
    # and that is metafor's transf.ipft.hm with the pooled rows' n (R's numbers: test_binary_pipeline.py)
    n = result.effects.loc[result.effects["included"], "n"].to_numpy(dtype=float)
    assert row.estimate == pytest.approx(eb.transf_ipft_hm(np.array([p["estimate"]]), n)[0], rel=FORMULA)
    first = fd.reporter_sentences(p, effects=result.effects)[0]
    assert f"was {fd.num(p['estimate_prop'])} (95% CI: {fd.num(p['ci_low_prop'])} to" in first


def test_a_proportion_is_one_groups_no_side_of_the_axis_favours_a_group(pft):
    """A proportion describes one group: the forest figures draw no "lower/higher in cases" arrows, and the words for
    its CI never say "higher in" a group (the null 0 of a proportion is no comparison)."""
    from figure_readback import figure_texts

    result, _, out = pft
    for fig in (out.figures["leave1out"], out.figures["cumulative"]):
        texts = figure_texts(fig)
        assert not any("lower in" in t or "higher in" in t for t in texts), texts
    assert fd.conclusion_text(1, {"cases": "NSAID"}, "PFT") == "a proportion in one group (no comparison)"
    assert fd.conclusion_text(1, {"cases": "NSAID"}, "OR") == "higher in NSAID"  # a comparison keeps its words
