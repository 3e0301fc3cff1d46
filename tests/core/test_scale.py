"""Large analyses (metarepro._core.limits): every switch happens at its documented size, says so, and keeps the files.

Expected values come from:

* ``tests/reference/generate_begg_switch_reference.R`` → ``begg_switch_reference.json``: metafor 3.8-1
  ``ranktest(yi, vi)`` (exact p) and ``ranktest(yi, vi, exact = FALSE)`` (normal approximation) at k = 170 and
  k = 171 (where R's exact p is NA).
* the unchunked refits (one batch of all rows, itself checked against metafor in test_influence.py) for the
  chunked ones: the same numbers, bit for bit, since every row is fitted on its own;
* the table each figure is drawn from (effects.csv / pooled record, leave1out, cumulative, subgroups), read back
  from the drawn artists (tests/figure_readback.py), and numpy's histogram of the table's estimates for the
  histogram's bars.
"""

import re

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, assert_close, load_reference
from figure_readback import assert_rows_match, drawn_rows
from matplotlib.patches import Rectangle

from metarepro._core import limits
from metarepro.jobs import sensitivity
from metarepro.pipeline.analysis import Settings
from metarepro.present.plots import cumulative_forest_plot, forest_plot, leave1out_plot, subgroup_forest_plot
from metarepro.present.plots.forest import cumulative_steps
from metarepro.present.report import row_account
from metarepro.stats import influence
from metarepro.stats.bias import ranktest
from metarepro.stats.rma import rma
from metarepro.stats.subgroups import subgroup_analysis

BEGG = {d["k"]: d for d in load_reference("begg_switch_reference.json")["datasets"]}


# ------------------------------------------------------------------------------------------------------------
# Begg's test: exact p up to metafor's own limit (k = 170), the normal approximation above it


def test_begg_limit_is_where_metafor_exact_p_ends():
    assert limits.BEGG_EXACT_MAX_K == 170
    assert BEGG[170]["exact"]["pval"] is not None  # R gives the exact p at 170 ...
    assert BEGG[171]["exact"]["pval"] is None  # ... and NA from 171 on (gamma(n + 1) overflows)


def test_begg_exact_at_the_limit_agrees_with_metafor():
    d = BEGG[170]
    ours = ranktest(d["yi"], d["vi"])
    assert ours.exact and ours.method == "exact"
    assert_close(ours.tau, d["exact"]["tau"], "tau")
    assert_close(ours.pval, d["exact"]["pval"], "exact p")


def test_begg_normal_approximation_above_the_limit_agrees_with_metafor():
    d = BEGG[171]
    ours = ranktest(d["yi"], d["vi"])
    assert not ours.exact
    assert ours.method == "normal approximation (k = 171 > 170: the exact distribution costs O(k³))"
    assert_close(ours.tau, d["approx"]["tau"], "tau")
    assert_close(ours.pval, d["approx"]["pval"], "approximate p")


def test_begg_limit_can_be_injected():
    d = BEGG[170]
    ours = ranktest(d["yi"], d["vi"], exact_max_k=169)
    assert not ours.exact and "k = 170 > 169" in ours.method
    assert_close(ours.pval, d["approx"]["pval"], "approximate p")


def test_bias_record_names_begg_method():
    d = BEGG[171]
    rows = pd.DataFrame({"yi": d["yi"], "vi": d["vi"]})
    record = sensitivity.publication_bias(rows, Settings.from_config({"method": "REML"})).record
    assert record["begg_exact"] is False and record["begg_method"].startswith("normal approximation (k = 171")


# ------------------------------------------------------------------------------------------------------------
# refits: chunked (memory O(k)) gives the unchunked numbers; skipped above REFIT_MAX_K, with the reason


def _data(k, seed=1):
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.02, 0.3, k)
    return 0.3 + rng.normal(0, np.sqrt(vi + 0.05)), vi


@pytest.mark.parametrize("test", ["z", "knha"])
def test_chunked_refits_equal_one_batch(monkeypatch, test):
    yi, vi = _data(23)
    year = np.random.default_rng(2).integers(1990, 2000, yi.size).astype(float)
    whole = (influence.influence(yi, vi, test=test), influence.cumul(yi, vi, order=year, test=test))
    monkeypatch.setattr(limits, "REFIT_CHUNK_ELEMENTS", 3 * yi.size + 5)  # chunks of 3 rows, the last of 2
    assert [len(c) for c in influence.row_chunks(yi.size, yi.size)] == [3] * 7 + [2]
    chunked = (influence.influence(yi, vi, test=test), influence.cumul(yi, vi, order=year, test=test))
    for name in ("rstudent", "dffits", "cook_d", "cov_r", "tau2_del", "qe_del", "dfbs", "inf"):
        np.testing.assert_array_equal(getattr(chunked[0], name), getattr(whole[0], name), err_msg=name)
    for name in ("estimate", "se", "ci_low", "ci_high", "tau2", "q", "i2", "order"):
        np.testing.assert_array_equal(getattr(chunked[0].leave1out, name), getattr(whole[0].leave1out, name))
        np.testing.assert_array_equal(getattr(chunked[1], name), getattr(whole[1], name), err_msg=name)


def test_baujat_from_influence_equals_its_own_refits():
    yi, vi = _data(12)
    own = influence.baujat(yi, vi, test="knha")
    shared = influence.baujat(yi, vi, test="knha", influence=influence.influence(yi, vi, test="knha"))
    np.testing.assert_array_equal(own.x, shared.x)
    np.testing.assert_array_equal(own.y, shared.y)


def _rows(k, seed=1):
    yi, vi = _data(k, seed)
    return pd.DataFrame({"line": np.arange(2, k + 2), "study_id": [f"s{i}" for i in range(k)],
                         "study": [f"Study {i}" for i in range(k)], "yi": yi, "vi": vi, "year": 1990 + np.arange(k) % 7,
                         "sample": np.where(np.arange(k) % 3, "serum", "plasma")})  # fmt: skip


SETTINGS = Settings.from_config({"method": "REML", "test": "knha"})


def test_diagnostics_computed_at_the_limit():
    out = sensitivity.diagnostics(_rows(6), SETTINGS, refit_max_k=6)
    assert all(len(out.tables[name]) == 6 and "note" not in out.tables[name] for name in out.tables)


def test_diagnostics_skipped_above_the_limit_say_why():
    out = sensitivity.diagnostics(_rows(7), SETTINGS, refit_max_k=6)
    note = "leave-one-out, influence, Baujat and cumulative analyses not computed for k > 6 (here k = 7): each " \
           "refits the model k times"  # fmt: skip
    assert set(out.tables) == {"leave1out", "influence", "cumulative"}
    assert set(out.figures) == {"leave1out", "cumulative", "baujat"}
    for name, table in out.tables.items():
        assert len(table) == 1 and table["note"].iloc[0] == note, name
        assert {"line", "study", "estimate" if name != "influence" else "rstudent"} <= set(table)  # same columns
    for fig in out.figures.values():
        shown = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
        assert "not computed for k > 6" in shown


def test_permutations_skipped_above_the_limit_say_why():
    rows = _rows(12)
    at = sensitivity.metaregression(rows, SETTINGS, ["year"], permutations=50, seed=1, permutation_max_k=12)
    above = sensitivity.metaregression(rows, SETTINGS, ["year"], permutations=50, seed=1, permutation_max_k=11)
    assert at["permutations"].iloc[0] == 50 and "permutation_note" not in at
    assert above["permutations"].iloc[0] == 0 and np.isnan(above["QM_permutation_p"].iloc[0])
    assert above["permutation_note"].iloc[0].startswith("permutation test not computed for k > 11 (here k = 12)")
    np.testing.assert_array_equal(at["pval"], above["pval"])  # the model's own tests are unchanged


# ------------------------------------------------------------------------------------------------------------
# figures: one row per study up to FIGURE_MAX_ROWS, then the summary form, still matching its table


def _texts(fig):
    return " ".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))).replace("\n", " ")


def _bars(fig):
    bars = sorted((a for a in fig.findobj(Rectangle) if (a.get_gid() or "").startswith("hist-bin")),
                  key=lambda a: int(a.get_gid()[8:]))  # fmt: skip
    edges = np.array([b.get_x() for b in bars] + [bars[-1].get_x() + bars[-1].get_width()])
    return edges, np.array([b.get_height() for b in bars])


def _effects(k):
    rows = _rows(k)
    fit = rma(rows["yi"], rows["vi"], "REML", "knha")
    half = 1.959963984540054 * np.sqrt(rows["vi"])  # z(0.975)
    effects = rows.assign(ci_low=rows["yi"] - half, ci_high=rows["yi"] + half, weight=fit.weights, included=True)
    return effects, {**fit.to_dict(), "measure": "SMD"}


def test_forest_one_row_per_study_at_the_limit():
    effects, pooled = _effects(8)
    fig = forest_plot(effects, pooled, max_rows=8)
    assert len(drawn_rows(fig)) == 9 and "not drawn one row each" not in _texts(fig)


def test_forest_summary_above_the_limit_matches_its_tables():
    effects, pooled = _effects(9)
    effects.loc[3, "yi"] = 40.0  # far outside: counted as beyond the axis, not squeezing the others
    fig = forest_plot(effects, pooled, max_rows=8)
    assert "9 studies: more than 8, so not drawn one row each" in _texts(fig)
    summary = pd.DataFrame([{"estimate": pooled["estimate"], "ci_low": pooled["ci_low"], "ci_high": pooled["ci_high"]}])
    assert_rows_match(fig, summary, ["Random-effects model (REML, k = 9)"])  # the diamond is pooled.json's
    edges, counts = _bars(fig)
    np.testing.assert_array_equal(counts, np.histogram(effects["yi"], bins=edges)[0])  # the bars are effects' yi
    assert counts.sum() == 8 and "beyond the axis: 0 left, 1 right" in _texts(fig)
    width, height = fig.get_size_inches() * 150  # the PNG's pixels (save_figure writes 150 dpi)
    assert height < 1200 and width < 2000


def test_leave1out_summary_draws_largest_shifts_with_their_rows():
    effects, pooled = _effects(30)
    table = sensitivity.diagnostics(_rows(30), SETTINGS, max_rows=5).tables["leave1out"]
    fig = leave1out_plot(table, estimate=pooled["estimate"], max_rows=29)
    shift = np.abs(table["estimate"] - pooled["estimate"])
    expected = np.sort(np.argsort(-shift.to_numpy())[:20])  # the 20 largest shifts, in table order
    shown = table.iloc[expected]
    assert_rows_match(fig, shown, [f"− {s}" for s in shown["study"]])
    edges, counts = _bars(fig)
    np.testing.assert_array_equal(counts, np.histogram(table["estimate"], bins=edges)[0])
    assert "30 omissions: more than 29" in _texts(fig)


def test_cumulative_summary_draws_log_spaced_steps_with_their_rows():
    table = sensitivity.diagnostics(_rows(40), SETTINGS, max_rows=5).tables["cumulative"]
    fig = cumulative_forest_plot(table, max_rows=39)
    steps = cumulative_steps(40)
    assert steps[0] == 1 and steps[-1] == 40 and np.all(np.diff(steps) > 0)
    shown = table.iloc[steps - 1]
    assert (shown["added"].to_numpy() == steps).all()
    assert_rows_match(fig, shown, [f"+ {s} ({n:,} studies)" for s, n in zip(shown["study"], steps, strict=True)])
    assert "40 steps: more than 39" in _texts(fig)
    fig = cumulative_forest_plot(table, max_rows=40)
    assert len(drawn_rows(fig)) == 40


def test_subgroup_summary_draws_each_subgroup_diamond():
    rows, _ = _effects(12)
    result = subgroup_analysis(rows["yi"].to_numpy(), rows["vi"].to_numpy(), rows["sample"].to_numpy(), "REML")
    table = result.table()
    fig = subgroup_forest_plot(rows, rows["sample"].to_numpy(), result, max_rows=11)
    labels = [f"Subgroup {g} (REML, k = {int(k)}, I² = {i2:.1f}%)" for g, k, i2 in
              zip(table.index, table["k"], table["i2"], strict=True)]  # fmt: skip
    assert_rows_match(fig, table, labels)
    edges, counts = _bars(fig)
    np.testing.assert_array_equal(counts, np.histogram(rows["yi"], bins=edges)[0])
    assert "12 studies: more than 11" in _texts(fig)
    full = subgroup_forest_plot(rows, rows["sample"].to_numpy(), result, max_rows=12)
    assert len(drawn_rows(full)) == 12 + 2 * 2  # each subgroup: a header, its studies, its diamond


def test_funnel_draws_a_density_above_the_point_limit(monkeypatch):
    from metarepro.present.plots import funnel_plot

    yi, vi = _data(11)
    monkeypatch.setattr(limits, "VECTOR_MAX_POINTS", 11)
    assert not [a for a in funnel_plot(yi, vi).findobj() if a.get_gid() == "study-density"]
    monkeypatch.setattr(limits, "VECTOR_MAX_POINTS", 10)
    fig = funnel_plot(yi, vi)
    (density,) = [a for a in fig.findobj() if a.get_gid() == "study-density"]
    assert density.get_array().sum() == 11  # every study is in a bin (counts before the log colour scale)
    assert "observed studies: 11, shown as their density (more than 10)" in _texts(fig)


# ------------------------------------------------------------------------------------------------------------
# the report section: study-level tables up to SECTION_MAX_ROWS, then a sentence naming the CSV


def test_row_account_lists_rows_up_to_the_limit_then_names_the_file():
    effects, _ = _effects(5)
    effects = effects.assign(input="means", conversion="", reason="")
    assert effects["study"].iloc[4] in row_account(effects, max_rows=5)
    summarised = row_account(effects, max_rows=4)
    assert effects["study"].iloc[4] not in summarised
    assert "The 5 pooled rows are not listed here (more than 4 rows): they are in effects.csv." in summarised


# ------------------------------------------------------------------------------------------------------------
# one whole job just above the real limits: every declared file is written, each switch is said


def test_analysis_job_above_every_limit(tmp_path, monkeypatch):
    import importlib.util

    from metarepro.jobs import pool
    from metarepro.jobs.files import read_effects, read_json
    from metarepro.jobs.run import analysis_files, analysis_job
    from metarepro.present import metafor_script

    spec = importlib.util.spec_from_file_location("bench_scale", REPO / "benchmarks" / "bench_scale.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # the benchmark's sheet and analysis: subgroups, a moderator, cumulative order
    analysis_config, make_sheet = bench.analysis_config, bench.make_sheet

    k = max(limits.REFIT_MAX_K, limits.PERMUTATION_MAX_K, limits.VECTOR_MAX_POINTS) + 1
    # the record's and the script's limits (10,000 in use) set just below k, so that this job is above them too
    monkeypatch.setattr(pool, "RECORD_LIST_MAX_K", k - 1)
    monkeypatch.setattr(metafor_script, "SCRIPT_INLINE_MAX_ROWS", k - 1)
    config = analysis_config(make_sheet(k, tmp_path / "sheet.csv"))
    formats = ("svg", "png")  # the PNG too (figure_formats: [svg, png]): its size is checked below
    analysis_job(config["analysis"]["data"], config, tmp_path / "out", formats)
    files = analysis_files(config["analysis"], formats)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(files)
    section = (tmp_path / "out" / "section.html").read_text()
    assert len(section) < 1_500_000  # funnel and bubble as embedded images; no per-study table
    for said in (f"not computed for k &gt; {limits.REFIT_MAX_K:,}", "p: normal approximation (k = ",
                 f"permutation test not computed for k &gt; {limits.PERMUTATION_MAX_K:,}",
                 f"The {k:,} pooled rows are not listed here"):  # fmt: skip
        assert said in section, said
    forest = (tmp_path / "out" / "forest.svg").read_text()
    assert re.search(rf"{k:,} studies: more than {limits.FIGURE_MAX_ROWS:,}", forest)
    pooled = read_json(tmp_path / "out" / "pooled.json")
    assert "study_years" not in pooled and sum(n for _, n in pooled["study_year_counts"]) == k
    effects = read_effects(tmp_path / "out" / "effects.csv")
    years = pd.Series(effects.loc[effects["included"], "order_key"]).value_counts().sort_index()
    assert pooled["study_year_counts"] == [[int(year), int(n)] for year, n in years.items()]  # every row has a year
    script = (tmp_path / "out" / "metafor.R").read_text()
    assert len(script) < 50_000 and "c(2" not in script and "groups <- dat[!is.na(dat$n1i)" in script
    assert (tmp_path / "out" / "forest.png").stat().st_size < 500_000
