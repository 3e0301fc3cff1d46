"""Dependent effects in the pipeline (config ``dependence``/``robust``; metarepro.jobs.dependence).

Expected values: tests/reference/dependence_reference.json, written by tests/reference/generate_dependence_reference.R
(R metafor 3.8-1 rma.mv/vcalc/aggregate/confint/robust and clubSandwich) from the rows the pipeline pools
(tests/data/dependence_*.csv, exported by tests/reference/export_dependence_rows.py; the first test checks that
the pipeline still pools exactly those rows). rma.mv references are polished to the root of the score equation
(see tests/stats/test_rma_mv.py's module docstring): fields agree at ITERATIVE, AIC/BIC come from the free nlminb
fit, and profile bounds at rtol 1e-6 (test_rma_mv.test_profile_ci_matches_confint gives the reason).
"""

import html
import re
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, assert_close, load_reference
from figure_readback import assert_rows_match, renumber
from tolerances import FORMULA, ITERATIVE

from metarepro.inputs.config import check_config, load_config
from metarepro.jobs import run_analysis
from metarepro.jobs.dependence import aggregated_rows
from metarepro.jobs.sensitivity import diagnostics, metaregression, publication_bias, subgroups
from metarepro.pipeline.analysis import EFFECT_COLUMNS
from metarepro.present.plots import forest_plot
from metarepro.present.plots.forest import forest_rows

sys.path.insert(0, str(REPO / "tests" / "reference"))
import export_dependence_rows as export  # noqa: E402

REFERENCE = load_reference("dependence_reference.json")["cases"]
SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
SHEET = REPO / "data/raw/cytokines_mdd.csv"
CONFIG = yaml.safe_load((REPO / "config/config.yaml").read_text())
PROFILE_RTOL = 1e-6


def close(ours, reference, name, **tol):
    assert_close(ours, reference, name, **{**ITERATIVE, **tol})


@pytest.fixture(scope="module")
def multilevel():
    return run_analysis(SHEET, *export.analyses()["il6_smd_multilevel"])


@pytest.fixture(scope="module")
def multivariate():
    return run_analysis(SHEET, *export.analyses()["multivariate_il6_tnf_crp"])


FITTED = {"il6_smd_multilevel": "multilevel", "multivariate_il6_tnf_crp": "multivariate"}  # the fixture of each


@pytest.mark.parametrize("name", list(export.analyses()))
def test_the_pipeline_pools_the_rows_r_was_given(name, request):
    fixture = pd.read_csv(REPO / "tests" / "data" / f"dependence_{name}.csv", dtype={"study_id": str})
    # export.rows(name), from the fit the other tests share (the same sheet, analysis and defaults)
    fitted = request.getfixturevalue(FITTED[name])
    ours = export.pooled_rows(fitted.effects, export.analyses()[name][0]).reset_index(drop=True)
    assert list(ours["line"]) == list(fixture["line"]) and list(ours["study_id"]) == list(fixture["study_id"])
    np.testing.assert_allclose(ours[["yi", "vi"]], fixture[["yi", "vi"]], rtol=FORMULA, atol=0)
    assert len(fixture) == REFERENCE[name]["rows"]


def test_every_row_is_accounted_for_and_dependent_rows_are_kept(multilevel):
    effects = multilevel.effects
    assert effects["included"].sum() + (effects["reason"] != "").sum() == len(effects)
    assert not effects["reason"].str.contains("already contributes").any()
    # the case subgroups sharing controls (data/raw/README.md) are both in
    for sid in ("CN_pain_670337574", "CN_Zhengzhou_Th17_7104835171"):
        assert effects.loc[effects["study_id"] == sid, "included"].sum() == 2
    assert multilevel.pooled["k"] == 22 and multilevel.pooled["dependence"]["clusters"] == {"study_id": 20}


def test_multilevel_with_shared_controls_matches_metafor(multilevel):
    ref = REFERENCE["il6_smd_multilevel"]
    fit, pooled, dep = ref["fit"], multilevel.pooled, multilevel.pooled["dependence"]
    for ours, theirs in (("estimate", "b"), ("se", "se"), ("pval", "pval"), ("ci_low", "ci_lb"),
                         ("ci_high", "ci_ub"), ("df", "ddf")):  # fmt: skip
        close(pooled[ours], fit[theirs], ours)
    assert pooled["test"] == "t" and "Knapp-Hartung" in dep["test_note"]
    close(pooled["tau2"], sum(fit["sigma2"]), "tau2 = total of the sigma2")
    close([c["estimate"] for c in dep["sigma2"]], fit["sigma2"], "sigma2")
    assert [c["nlevels"] for c in dep["sigma2"]] == fit["s_nlevels"]
    close(pooled["i2"], fit["I2"]["total"], "I2 total")
    close([c["I2"] for c in dep["sigma2"]], fit["I2"]["levels"], "I2 per level")
    close([pooled["q"], pooled["pi_low"], pooled["pi_high"]], [fit["QE"], *fit["predict"]["pi_lb"],
          *fit["predict"]["pi_ub"]], "QE and prediction interval")  # fmt: skip
    close(dep["logLik"], fit["logLik"], "logLik")
    close([dep["AIC"], dep["BIC"], dep["AICc"]], [fit["free"][k] for k in ("AIC", "BIC", "AICc")], "AIC, BIC, AICc")
    for component, part in zip(dep["sigma2"], ref["profile"].values(), strict=True):
        close([component["ci_low"], component["ci_high"]], [part["ci_lb"][0], part["ci_ub"][0]],
              f"profile CI of sigma2 {component['level']}", rtol=PROFILE_RTOL, atol=1e-9)  # fmt: skip
    cr2 = ref["robust"]["CR2"]
    robust = dep["robust"]
    assert robust["type"] == "CR2" and robust["clusters"] == cr2["n"]
    for ours, theirs in (("estimate", "b"), ("se", "se"), ("df", "dfs"), ("pval", "pval"), ("ci_low", "ci_lb"),
                         ("ci_high", "ci_ub")):  # fmt: skip
        close(robust[ours], cr2[theirs], f"robust CR2 {ours}")
    close(robust["df"], ref["robust"]["coef_test"]["df"], "clubSandwich coef_test Satterthwaite df")
    used = multilevel.effects[multilevel.effects["included"]]
    close(used["weight"], ref["weights_rowsum"], "weights (metafor type = 'rowsum')")


def test_estimator_table_of_a_multilevel_analysis_is_reml_and_ml(multilevel):
    table = multilevel.estimators
    assert list(zip(table["method"], table["test"], strict=True)) == [("REML", "z"), ("REML", "t"), ("ML", "z"),
                                                                     ("ML", "t")]  # fmt: skip
    row = table[(table["method"] == "REML") & (table["test"] == "t")].iloc[0]
    assert row["estimate"] == multilevel.pooled["estimate"] and row["ci_low"] == multilevel.pooled["ci_low"]


def test_without_flagged_refits_the_same_model(multilevel):
    effects, sens = multilevel.effects, multilevel.pooled["without_flagged"]
    flagged = effects["included"] & (effects["flags"].fillna("") != "")
    assert sens["excluded_lines"] == [int(x) for x in effects.loc[flagged, "line"]]
    assert sens["k"] == int(effects["included"].sum() - flagged.sum())
    assert sens["dependence"]["model"] == "multilevel" and sens["dependence"]["k_effects"] == sens["k"]


def test_aggregate_then_rma_matches_metafor():
    ref = REFERENCE["il6_aggregate"]
    analysis = {**export.analyses()["il6_smd_multilevel"][0], "dependence": {"model": "aggregate", "rho": 0.6}}
    result = run_analysis(SHEET, analysis, CONFIG["defaults"])
    pooled, dep = result.pooled, result.pooled["dependence"]
    agg = ref["aggregated"]
    assert [a["cluster"] for a in dep["aggregated"]] == agg["study_id"]
    close([a["yi"] for a in dep["aggregated"]], agg["yi"], "aggregated yi", rtol=FORMULA)
    close([a["vi"] for a in dep["aggregated"]], agg["vi"], "aggregated vi", rtol=FORMULA)
    fit = ref["fit"]
    for ours, theirs in (("estimate", "b"), ("se", "se"), ("pval", "pval"), ("ci_low", "ci_lb"), ("ci_high", "ci_ub"),
                         ("tau2", "tau2"), ("i2", "I2"), ("q", "QE"), ("pi_low", "pi_lb"), ("pi_high", "pi_ub")):
        close(pooled[ours], fit[theirs], ours)
    assert pooled["k"] == len(agg["yi"]) and dep["k_effects"] == ref["rows"]
    for ours, theirs in (("estimate", "b"), ("se", "se"), ("df", "dfs"), ("pval", "pval"), ("ci_low", "ci_lb"),
                         ("ci_high", "ci_ub")):  # fmt: skip
        close(dep["robust"][ours], ref["robust"][theirs], f"robust {ours}")
    # every estimator on the aggregated (independent) rows
    assert result.estimators["method"].nunique() == 9 and set(result.estimators["k"]) == {len(agg["yi"])}


def test_multivariate_matches_metafor(multivariate):
    ref = REFERENCE["multivariate_il6_tnf_crp"]
    fit, dep, pooled = ref["fit"], multivariate.pooled["dependence"], multivariate.pooled
    coefficients = dep["coefficients"]
    assert [c["name"] for c in coefficients] == ["CRP", "IL-6", "TNF-a"]
    for ours, theirs in (("estimate", "b"), ("se", "se"), ("pval", "pval"), ("ci_low", "ci_lb"), ("ci_high", "ci_ub")):
        close([c[ours] for c in coefficients], fit[theirs], f"coefficients {ours}")
    # the primary is the marker with the most effects (IL-6: 22 of 49; CRP 16 since Cao 2021 is excluded as
    # arithmetically impossible), and pooled.json leads with it
    assert dep["primary"] == "IL-6" and [c["k"] for c in coefficients] == [16, 22, 11]
    close(pooled["estimate"], fit["b"][1], "primary estimate")
    close(pooled["tau2"], fit["tau2"][1], "primary tau2 (HCS: one per marker)")
    close([c["estimate"] for c in dep["tau2"]], fit["tau2"], "tau2")
    close([c["estimate"] for c in dep["rho"]], fit["rho"], "rho")
    close([c["I2"] for c in dep["tau2"]], fit["I2"]["levels"], "I2 per marker")
    close([dep["QE"], dep["logLik"], dep["AIC"], dep["BIC"]], [fit["QE"], fit["logLik"], fit["free"]["AIC"],
          fit["free"]["BIC"]], "QE, logLik, AIC, BIC")  # fmt: skip
    # predict() at the primary marker with its own tau2 (R's rows 18.. are IL-6 with tau2.levels 2)
    close([pooled["pi_low"], pooled["pi_high"]], [fit["predict"]["pi_lb"][18], fit["predict"]["pi_ub"][18]], "PI")
    for component, part in zip(dep["tau2"], list(ref["profile"].values())[:3], strict=True):
        bounds = [(ours, theirs[0]) for ours, theirs in ((component["ci_low"], part["ci_lb"]),
                                                        (component["ci_high"], part["ci_ub"])) if theirs[0] is not None]
        close([b[0] for b in bounds], [b[1] for b in bounds], f"profile CI of tau2 {component['level']}",
              rtol=PROFILE_RTOL, atol=1e-9)  # fmt: skip
    cr1 = ref["robust"]["CR1"]
    assert dep["robust"]["type"] == "CR1"
    for ours, theirs in (("se", "se"), ("df", "dfs"), ("pval", "pval"), ("ci_low", "ci_lb"), ("ci_high", "ci_ub")):
        close(dep["robust"][ours], cr1[theirs][1] if len(cr1[theirs]) > 1 else cr1[theirs][0], f"robust CR1 {ours}")


def test_multivariate_primary_can_be_chosen():
    analysis, defaults = export.analyses()["multivariate_il6_tnf_crp"]
    analysis = {**analysis, "dependence": {**analysis["dependence"], "primary": "TNF-a"}, "robust": "CR2"}
    result = run_analysis(SHEET, analysis, defaults)
    close(result.pooled["estimate"], REFERENCE["multivariate_il6_tnf_crp"]["fit"]["b"][2], "TNF-a")
    close(result.pooled["dependence"]["robust"]["se"], REFERENCE["multivariate_il6_tnf_crp"]["robust"]["CR2"]["se"][2],
          "CR2 se of TNF-a")  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# without dependence: exactly the output of before (commit 59567df wrote tests/data/baseline_il6_smd_*)


def test_analyses_without_dependence_are_unchanged(tmp_path):
    """effects.csv and pooled.json byte for byte as the code before dependence wrote them (commit 59567df; at that
    commit all 21 analyses of config/config.yaml were compared so, the baseline keeps one). Regenerated once, for
    two intended changes (issue 17) and nothing else: pooled.json records the pooled studies' years
    (``study_years``), and Miller 2002 (line 248), whose printed p proves its dispersions are SEMs, is converted
    (SD = SEM·√n), which moves every weight and the fit. Regenerated again for the issue 17 audit: the sertraline/IL-17
    abstract's second entry now sorts after its primary (lines 208-215 of the sheet move by one), Chen 2024 is flagged
    eligibility_unclear and Fornaro 2011 no longer is (``without_flagged`` changes; the primary fit does not)."""
    from metarepro.jobs import write_analysis

    analysis = CONFIG["analyses"]["il6_smd"]
    result = run_analysis(REPO / analysis["data"], analysis, CONFIG["defaults"])
    write_analysis(result, tmp_path / "effects.csv", tmp_path / "pooled.json", tmp_path / "estimators.csv")
    assert list(result.effects.columns) == [*EFFECT_COLUMNS, "flags"]
    for name in ("effects.csv", "pooled.json"):
        assert (tmp_path / name).read_text() == (REPO / f"tests/data/baseline_il6_smd_{name}").read_text(), name
    assert "dependence" not in result.pooled


# ---------------------------------------------------------------------------------------------------------------
# sensitivity steps: one aggregated row per cluster, and they say so


def test_sensitivity_steps_run_on_aggregated_clusters(multilevel):
    from metarepro.stats.rma import rma

    used = multilevel.effects[multilevel.effects["included"]]
    sheet = pd.read_csv(SHEET, dtype=str).assign(line=lambda f: np.arange(len(f)) + 2)[["line", "year", "sample"]]
    rows = used.merge(sheet, on="line")
    agg = aggregated_rows(rows, multilevel.settings, ["sample", "year"])
    ref = REFERENCE["il6_aggregate"]  # shared controls, no rho: the aggregate of the model's own V
    assert len(agg) == multilevel.pooled["dependence"]["clusters"]["study_id"] == len(ref["aggregated"]["study_id"])
    pair = agg[agg["study_id"] == "CN_pain_670337574"].iloc[0]
    assert pair["rows"] == 2 and pair["lines"] == "209 210"  # lines since the issue 17 audit linked a duplicate
    # the weighted mean of two effects under V (vcalc with shared controls): closed form 1'V⁻¹y / 1'V⁻¹1
    two = used[used["study_id"] == "CN_pain_670337574"]
    n1, n2, v = two["n_cases"].to_numpy(), two["n_controls"].to_numpy()[0], two["vi"].to_numpy()
    r = (1 / n2) / np.sqrt((1 / n1[0] + 1 / n2) * (1 / n1[1] + 1 / n2))
    V = np.array([[v[0], r * np.sqrt(v[0] * v[1])], [r * np.sqrt(v[0] * v[1]), v[1]]])
    W = np.linalg.inv(V)
    assert_close(pair["yi"], W.sum(axis=0) @ two["yi"].to_numpy() / W.sum(), "aggregated yi", rtol=FORMULA)
    assert_close(pair["vi"], 1 / W.sum(), "aggregated vi", rtol=FORMULA)
    note = agg.attrs["dependence_note"]
    assert "22 rows aggregated to 20 clusters" in note
    diag = diagnostics(agg, multilevel.settings)
    assert len(diag.tables["leave1out"]) == 20 and diag.record["dependence"] == note
    assert all(set(table["dependence"]) == {note} for table in diag.tables.values())
    assert "with the covariance of case groups sharing controls" in note
    loo = diag.tables["leave1out"].iloc[0]
    alone = rma(agg["yi"].to_numpy()[1:], agg["vi"].to_numpy()[1:], "REML", "knha")
    assert_close(loo["estimate"], alone.estimate, "leave-one-out on the aggregated rows", rtol=FORMULA)
    assert publication_bias(agg, multilevel.settings).record["dependence"] == note
    assert set(subgroups(agg, multilevel.settings, ["sample"])["dependence"]) == {note}
    assert set(metaregression(agg, multilevel.settings, ["year"], permutations=0)["dependence"]) == {note}


def test_sensitivity_rows_aggregate_a_dependent_analysis(multilevel):
    from metarepro.jobs.sensitivity import sensitivity_rows

    rows = sensitivity_rows(multilevel, export.analyses()["il6_smd_multilevel"][0])  # as analysis_job
    assert len(rows) == 20 and "aggregated to 20 clusters" in rows.attrs["dependence_note"]


# ---------------------------------------------------------------------------------------------------------------
# the forest plot: the effects of one cluster together under its label


def test_forest_groups_effects_by_cluster(multivariate):
    effects, pooled = multivariate.effects, multivariate.pooled
    rows = forest_rows(effects, pooled)
    used = effects[effects["included"]]
    studies = rows[rows["kind"] == "study"]
    assert len(studies) == len(used) and set(studies["cluster"]) == set(used["study_id"])
    # each cluster's rows are contiguous, under a header naming it when it has several
    runs = (studies["cluster"] != studies["cluster"].shift()).cumsum()
    assert runs.nunique() == used["study_id"].nunique()
    jangpangi = rows.index[rows["label"] == "Jangpangi 2014 (3 effects)"][0]
    assert list(rows.loc[jangpangi + 1 : jangpangi + 3, "label"]) == ["CRP, line 25", "IL-6, line 235",
                                                                      "TNF-a, line 339"]  # fmt: skip
    fig = forest_plot(effects, pooled)
    by_line = used.set_index("line")
    drawn = rows[rows["kind"] != "header"].reset_index(drop=True)
    # study rows against effects.csv (looked up by the sheet line in the label or by the cluster's only row)
    table = []
    for row in drawn.itertuples():
        if row.kind == "study":
            line = int(row.label.rsplit("line ", 1)[1]) if "line " in row.label else int(
                used.loc[used["study_id"] == row.cluster, "line"].iloc[0])  # fmt: skip
            table.append((by_line.loc[line, "yi"], by_line.loc[line, "ci_low"], by_line.loc[line, "ci_high"]))
        else:
            c = next(c for c in pooled["dependence"]["coefficients"] if row.label.startswith(f"Multivariate model: "
                                                                                              f"{c['name']} "))
            table.append((c["estimate"], c["ci_low"], c["ci_high"]))
    table = pd.DataFrame(table, columns=["estimate", "ci_low", "ci_high"])
    from figure_readback import drawn_rows

    shown = drawn_rows(fig)
    keep = [i for i in sorted(shown) if "point" in shown[i]]
    assert len(keep) == len(drawn)
    for i, row in zip(keep, table.itertuples(), strict=True):
        point = shown[i]["point"]
        np.testing.assert_allclose(point if np.ndim(point) == 0 else point[1], row.estimate, rtol=1e-12)
    assert pooled["dependence"]["primary"] in rows[rows["kind"] == "summary"]["label"].iloc[0]


def test_forest_of_a_multilevel_analysis_reads_back(multilevel):
    effects, pooled = multilevel.effects, multilevel.pooled
    rows = forest_rows(effects, pooled)
    fig = forest_plot(effects, pooled)
    # header rows carry no estimate: compare the other rows, renumbered as drawn
    headers = rows.index[rows["kind"] == "header"]
    assert list(rows.loc[headers, "label"]) == [
        "Chinese study of IL-6 in depression with somatic pain (author not shown) (2 effects)",
        "Zhengzhou Univ First Affiliated Hospital Th17 study (author not shown) (2 effects)"]  # fmt: skip
    from figure_readback import drawn_rows

    drawn = drawn_rows(fig)
    assert [drawn[i]["label"] for i in headers] == list(rows.loc[headers, "label"])
    body = rows.drop(index=headers)
    assert_rows_match(renumber(fig, body.index), body.reset_index(drop=True), list(body["label"]))




# ---------------------------------------------------------------------------------------------------------------
# config: each mistake one line with file, line and key


def write(tmp_path, text):
    path = tmp_path / "my.yaml"
    path.write_text(text)
    return path


def errors_of(tmp_path, monkeypatch, analysis: str, defaults: str = "") -> list[str]:
    monkeypatch.chdir(REPO)
    head = f"defaults:\n{defaults}" if defaults else ""
    text = f"{head}analyses:\n  il6:\n    title: t\n    data: data/raw/cytokines_mdd.csv\n{analysis}"
    config, lines = load_config([write(tmp_path, text)])
    return check_config(config, SCHEMA, lines)


@pytest.mark.parametrize(
    ("analysis", "expected"),
    [
        ("    dependence: {model: multilvel}\n",
         "line 5 (analyses → il6 → dependence → model): 'multilvel' is not one of multilevel, multivariate, "
         "aggregate (did you mean 'multilevel'?)"),
        ("    dependence: {model: multilevel, levels: [study_id, sampel]}\n",
         "line 5 (analyses → il6 → dependence → levels): data/raw/cytokines_mdd.csv has no column 'sampel' (did you "
         "mean 'sample'?)"),
        ("    dependence:\n      model: aggregate\n      rho: 1.5\n",
         "line 7 (analyses → il6 → dependence → rho): 1.5 must be at most 1"),
        ("    dependence:\n      model: multivariate\n      inner: marker\n      rho: -2\n",
         "line 8 (analyses → il6 → dependence → rho): -2 must be at least -1"),
        ("    dependence: {model: aggregate}\n",
         "line 5 (analyses → il6 → dependence): model aggregate needs 'rho', the assumed correlation of the rows of "
         "one cluster (e.g. rho: 0.6); metafor's aggregate() has no default"),
        ("    dependence: {model: multivariate, struct: UN}\n",
         "line 5 (analyses → il6 → dependence): model multivariate needs 'inner', the column of the outcomes within "
         "a cluster (e.g. inner: marker)"),
        ("    dependence:\n      model: multilevel\n      inner: marker\n",
         "line 7 (analyses → il6 → dependence → inner): 'inner' does not apply to model multilevel (it reads "
         "case_group, dfs, levels, rho, shared_controls)"),
        ("    dependence: {model: multivariate, inner: marker, struct: AR}\n",
         "line 5 (analyses → il6 → dependence → struct): 'AR' is not one of CS, HCS, UN"),
        ("    robust: CR2\n",
         "line 5 (analyses → il6 → robust): robust needs a dependence model (its clusters are the outermost level); "
         "add dependence or remove robust"),
        ("    robust: CR3\n    dependence: {model: multilevel}\n",
         "line 5 (analyses → il6 → robust): 'CR3' is not one of CR1, CR2 (did you mean 'CR2'?)"),
        ("    dependence: {model: aggregate, rho: 0.5, shared_controls: true}\n",
         "line 5 (analyses → il6 → dependence → rho): with shared_controls, rho correlates different outcomes (model "
         "multivariate); for one outcome the shared control group alone gives the covariance. Remove rho or "
         "shared_controls"),
        ("    method: DL\n    dependence: {model: multilevel}\n",
         "line 5 (analyses → il6 → method): model multilevel is fitted by metafor's rma.mv, which estimates REML or "
         "ML only, not DL; set method: REML or ML for this analysis"),
    ],
    ids=["bad model", "missing level column", "rho above 1", "rho below -1", "aggregate without rho",
         "multivariate without inner", "key of another model", "bad struct", "robust alone", "bad robust",
         "rho with shared controls", "method"],  # fmt: skip
)
def test_dependence_config_mistakes_are_one_line_each(tmp_path, monkeypatch, analysis, expected):
    found = errors_of(tmp_path, monkeypatch, analysis)
    assert found == [f"{tmp_path / 'my.yaml'}, {expected}"]


def test_dependence_is_not_a_default(tmp_path, monkeypatch):
    found = errors_of(tmp_path, monkeypatch, "", defaults="  dependence: {model: multilevel}\n")
    assert found == [f"{tmp_path / 'my.yaml'}, line 2 (defaults → dependence): unknown key 'dependence'"]


def test_a_dependent_model_that_cannot_be_fitted_is_bad_input():
    from metarepro.inputs.sheet import SheetError

    analysis = {"title": "t", "data": "x", "where": {"marker": "IL-1b"}, "robust": "CR1",
                "dependence": {"model": "multivariate", "inner": "marker", "primary": "IL-6"}}  # fmt: skip
    with pytest.raises(SheetError, match=r"cytokines_mdd.csv: the multivariate model cannot be fitted .*primary "
                                         r"'IL-6' is not a value of 'marker'"):  # fmt: skip
        run_analysis(SHEET, analysis, {})


def test_rows_without_a_level_value_are_excluded_with_a_reason():
    analysis = {"title": "t", "data": "x", "where": {"marker": "IL-6"},
                "dependence": {"model": "multilevel", "levels": ["study_id", "sample"]}}  # fmt: skip
    effects = run_analysis(SHEET, analysis, {}).effects
    sheet = pd.read_csv(SHEET, dtype=str)
    empty = set(np.flatnonzero(sheet["sample"].isna().to_numpy()) + 2)
    reasons = effects.set_index("line")["reason"]
    hit = [line for line in effects["line"] if line in empty and reasons[line].startswith("'sample' is empty")]
    assert hit and not effects.loc[effects["line"].isin(hit), "included"].any()


def test_participants_are_counted_once_per_cluster(multilevel):
    used = multilevel.effects[multilevel.effects["included"]]
    # CN_pain and CN_Zhengzhou: two case subgroups each against one control group (30 and 40 controls)
    assert multilevel.pooled["n_controls"] == used["n_controls"].sum() - 30 - 40
    assert multilevel.pooled["n_cases"] == used["n_cases"].sum()


# ---------------------------------------------------------------------------------------------------------------
# the report: which model, how many effects and clusters, the components, the robust result; metafor references


def test_report_names_the_model_components_and_robust_result(multilevel):
    from metarepro.present.report import AnalysisSection, analysis_section, fit_block, methods_section

    pooled, dep = multilevel.pooled, multilevel.pooled["dependence"]
    block = html.unescape(fit_block(pooled))
    assert dep["formula"] in block and "22 effects in 20 study_id clusters" in block
    assert f"sigma^2 {'study_id':<28} {dep['sigma2'][0]['estimate']:.4f}" in block
    assert f"[{dep['sigma2'][1]['ci_low']:.4f}, {dep['sigma2'][1]['ci_high']:.4f}]" in block
    # the model results in print.rma.mv's layout (metarepro._core.printing, checked against R): the intercept
    # without a row name, the t test's df, the significance codes
    assert re.search(rf"^estimate +se +tval +df +pval +ci\.lb +ci\.ub\n +{pooled['estimate']:.4f} +{pooled['se']:.4f} "
                     rf"+{pooled['zval']:.4f} +21 ", block, flags=re.M)  # fmt: skip
    assert "Signif. codes:" in block
    robust = dep["robust"]
    assert (f"Cluster-robust inference (CR2, 20 clusters of study_id):\nestimate {robust['estimate']:.4f}, se "
            f"{robust['se']:.4f}") in block  # fmt: skip
    section = AnalysisSection("il6_smd_multilevel", "t", pooled, multilevel.effects, "<svg/>",
                              estimators=multilevel.estimators)  # fmt: skip
    assert "k = 22 effects in 20 clusters" in analysis_section(section)
    methods = methods_section([section])
    assert "rma.mv(yi, V, random = ~ 1 | study_id/effect" in methods and "Konstantopoulos S (2011)" in methods
    assert "Pustejovsky JE, Tipton E (2018)" in methods and "Gleser LJ, Olkin I (2009)" in methods


def test_forest_footer_gives_components_and_the_robust_result(multilevel):
    from metarepro.present.plots.forest import heterogeneity_text

    dep = multilevel.pooled["dependence"]
    text = heterogeneity_text(multilevel.pooled)
    s1, s2 = (f"{c['estimate']:.3f}" for c in dep["sigma2"])
    r = dep["robust"]
    assert f"σ²(study_id) = {s1},  σ²(effect) = {s2},  QE = {dep['QE']:.2f} (df = 21)" in text
    assert f"Cluster-robust (CR2, 20 clusters): {r['estimate']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]" in text
