"""metafor.R, the R code behind each analysis (src/metarepro/present/metafor_script.py).

(a) Without R: the script of every analysis of the default config and of config/examples/*.yaml holds the analysis's
settings (method, test, level) in its fits, and says what metafor cannot express in a comment.
(b) With R (Rscript with metafor; else skipped with the line that installs it): each script, run as a reader would
(``Rscript results/<name>/metafor.R``), refits the analysis in metafor; every number it writes is compared with
pooled.json, bias.json and the tables. The expected values are R metafor's: the independent source is R itself,
run on the analysis's own effects.csv. Tolerances (tests/tolerances.py): ITERATIVE for everything that passes
through an iterative fit (metafor run with threshold/tol 1e-13, ours to 1e-14), p-values on the log scale, FORMULA
for escalc's closed forms, and OPTIMIZER for rma.mv (nlminb locates a maximum from log-likelihood values alone).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from tolerances import FORMULA, ITERATIVE, OPTIMIZER, log_p_close

from metarepro._core.dist import norm_ppf
from metarepro.jobs.files import read_effects, read_json, read_table
from metarepro.jobs.outputs import analysis_files
from metarepro.jobs.pool import run_analysis
from metarepro.jobs.sensitivity import analysis_rows, script_values, sensitivity_rows
from metarepro.present.metafor_script import SCRIPT_NAME, metafor_script

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "config" / "examples").glob("*.yaml"))
CONFIGS = [REPO / "config" / "config.yaml", *EXAMPLES]
INSTALL = "R with metafor is needed to run the generated scripts: apt-get install -y r-cran-metafor"


def _analyses():
    for path in CONFIGS:
        config = yaml.safe_load(path.read_text())
        for name, analysis in config["analyses"].items():
            yield pytest.param(path, name, {"name": name, "defaults": config.get("defaults", {}),
                                            "analysis": analysis}, id=f"{path.stem}:{name}")  # fmt: skip


def _script(config, bias=None):
    """The script of one analysis from its in-memory run (no figures): the settings are what matter here."""
    analysis = config["analysis"]
    result = run_analysis(REPO / analysis["data"], analysis, config["defaults"])
    sens = sensitivity_rows(result, analysis)
    return metafor_script(config["name"], config, result.effects, analysis_rows(result), sens, bias or {},
                          script_values(sens, analysis), unit=result.pooled.get("unit"), settings=result.settings)


@pytest.mark.parametrize(("path", "name", "config"), list(_analyses()))
def test_script_holds_the_analysis_settings(path, name, config, monkeypatch):
    monkeypatch.chdir(REPO)  # sheets are relative to the repository, as for the workflow
    from metarepro.pipeline.analysis import Settings

    settings = Settings.from_config(config["analysis"], config["defaults"])
    text = _script(config)
    dep = settings.dependence
    test = "t" if dep is not None and dep.model != "aggregate" and settings.test == "knha" else settings.test
    if settings.fit != "rma":  # binary outcomes pooled by rma.mh, rma.peto or rma.glmm, zero cells as the analysis
        call = next(line for line in text.splitlines() if line.startswith(f"res <- {settings.fit}("))
        assert f"level = {settings.level:g}" in call and "add = " in call and "to = " in call, call
        assert f"method {settings.method}, test {settings.test}, level {settings.level:g}%" in text
        return
    fit = next(line for line in text.splitlines() if line.startswith(("res <- rma(", "res <- rma.mv(")))
    assert f'method = "{settings.method}"' in fit and f'test = "{test}"' in fit, fit
    assert f"level = {settings.level:g}" in fit, fit
    if dep is None or dep.model == "aggregate":
        assert "control = CTRL" in fit and "CTRL <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)" in text
    if test != settings.test:  # knha under rma.mv: said, not silently changed
        assert "# metafor's rma.mv has no Knapp-Hartung adjustment" in text
    assert f"Rscript results/{name}/{SCRIPT_NAME}" in text
    assert f'method "{settings.method}"' not in text  # (the header names settings without quotes)
    assert f"method {settings.method}, test {settings.test}, level {settings.level:g}%" in text


def test_script_says_what_metafor_cannot_express(monkeypatch):
    """RevMan 5's approximate g (preset revman) has no escalc equivalent: a comment and a printed line say so, and
    every row then enters with effects.csv's yi and vi; converted rows are named with their conversion."""
    monkeypatch.chdir(REPO)
    revman = {"name": "x", "defaults": {}, "analysis": {"title": "x", "data": "data/raw/cytokines_mdd.csv",
                                                         "where": {"marker": "IL-6"}, "preset": "revman"}}  # fmt: skip
    text = _script(revman)
    assert "# No escalc: RevMan 5's approximate Hedges' g" in text
    assert "escalc(" not in text
    metafor = _script({**revman, "analysis": {**revman["analysis"], "preset": "metafor"}})
    assert 'escalc(measure = "SMD"' in metafor and 'vtype = "LS"' in metafor
    assert "enter with effects.csv's yi and vi, as metarepro computed them" in " ".join(
        line.lstrip("# ") for line in metafor.splitlines())
    assert "two-sided p→t→d" in " ".join(line.lstrip("# ") for line in metafor.splitlines())


def test_permutations_are_refitted_with_a_threshold_r_reaches(monkeypatch):
    """template.yaml's il6_drug_free: under the fits' threshold 1e-13 R's Fisher scoring stalls in 9 of the 24
    permutations and permutest leaves them out; the script refits the permutations with the threshold under which
    R fits all 24 (tests/reference/permutest_failed_refits_reference.json, written by
    generate_permutest_failed_refits_reference.R), so its exact p is metarepro's."""
    monkeypatch.chdir(REPO)
    template = yaml.safe_load((REPO / "config" / "examples" / "template.yaml").read_text())
    text = _script({"name": "il6_drug_free", "defaults": template["defaults"],
                    "analysis": template["analyses"]["il6_drug_free"]})  # fmt: skip
    line = next(x for x in text.splitlines() if x.startswith("pt <- permutest("))
    assert line.startswith("pt <- permutest(update(mr, control = list(threshold = 1e-10, tol = 1e-13, "
                           "maxiter = 10000)), iter = 1000,"), line  # fmt: skip
    reference = json.loads((REPO / "tests" / "reference" / "permutest_failed_refits_reference.json").read_text())
    by = {c["name"]: c for c in reference["by_control"]}
    assert by["threshold_1e10"]["control"]["threshold"] == 1e-10 and by["threshold_1e10"]["failed"] == 0
    assert by["threshold_1e13"]["failed"] == 9


def test_workflow_lists_the_script(monkeypatch):
    # one list of an analysis's files (jobs/outputs.py), which the workflow's rules read too
    assert SCRIPT_NAME in analysis_files({"title": "x", "data": "x.csv"})
    assert "OUTPUTS.analysis_files(" in (REPO / "workflow" / "rules" / "common.smk").read_text()


# ---------------------------------------------------------------------------------------------------------------
# (b) run the scripts with R


def _rscript():
    rscript = shutil.which("Rscript")
    if rscript is None:
        pytest.skip(INSTALL)
    probe = subprocess.run([rscript, "-e", "library(metafor)"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(INSTALL)
    return rscript


@pytest.fixture(scope="session")
def example_runs(tmp_path_factory):
    """Every example config run in a temporary copy of the repository's data and configs (SVG only)."""
    from metarepro.jobs.run import run_config

    workdir = tmp_path_factory.mktemp("examples")
    shutil.copytree(REPO / "data", workdir / "data")
    shutil.copytree(REPO / "config", workdir / "config")
    here = Path.cwd()
    os.chdir(workdir)
    try:
        folders = []
        for path in EXAMPLES:
            run_config(f"config/examples/{path.name}", formats=("svg",))
            config = yaml.safe_load(path.read_text())
            results = Path(config.get("results", "results"))
            folders += [results / name for name in config["analyses"]]
    finally:
        os.chdir(here)
    return workdir, folders


def _run_script(rscript, workdir, folder, out):
    result = subprocess.run([rscript, str(folder / SCRIPT_NAME), str(out)], capture_output=True, text=True,
                            cwd=workdir, timeout=600)  # fmt: skip
    assert result.returncode == 0, f"{folder}: {result.stderr[-2000:]}"
    assert "wrote" in result.stdout
    return json.loads(out.read_text())


class Comparison:
    """Every number R wrote beside ours, with the largest relative difference per kind of tolerance."""

    def __init__(self, name):
        self.name, self.failures, self.largest, self.count = name, [], {}, 0

    def close(self, what, ours, theirs, kind="iterative"):
        ours = np.atleast_1d(np.asarray(ours, dtype=float))
        theirs = np.atleast_1d(np.asarray([np.nan if v is None else v for v in np.atleast_1d(theirs)], dtype=float))
        assert ours.shape == theirs.shape, f"{self.name} {what}: {ours.shape} vs {theirs.shape}"
        both = np.isfinite(ours) & np.isfinite(theirs)
        if not np.array_equal(np.isfinite(ours), np.isfinite(theirs)):
            self.failures.append(f"{what}: ours {ours} vs R {theirs} (missing on one side)")
            return
        self.count += int(both.sum())
        a, b = ours[both], theirs[both]
        if kind == "p":
            positive = (a > 0) & (b > 0)
            ok = log_p_close(a[positive], b[positive]) and np.array_equal(a[~positive], b[~positive])
        elif kind == "optimizer_p":  # a statistic z relative error r gives p a relative error of about z² r
            z2 = np.maximum(1.0, norm_ppf(b / 2) ** 2)
            ok = bool(np.all(np.abs(np.log(a) - np.log(b)) <= OPTIMIZER["rtol"] * z2))
        else:
            # formula_scaled: a difference already divided by the largest value compared (escalc's yi and vi)
            rtol, atol = {"iterative": (ITERATIVE["rtol"], ITERATIVE["atol"]), "formula": (FORMULA, 0.0),
                          "formula_scaled": (0.0, FORMULA),
                          "optimizer": (OPTIMIZER["rtol"], OPTIMIZER["atol"])}[kind]  # fmt: skip
            ok = bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(np.abs(b) > 1e-8, np.abs(a - b) / np.abs(b), np.abs(a - b))  # absolute near 0
        if rel.size:
            worst = int(np.argmax(rel))
            if rel[worst] >= self.largest.get(kind, (-1,))[0]:
                self.largest[kind] = (float(rel[worst]), f"{self.name} {what}")
        if not ok:
            self.failures.append(f"{what}: ours {a} vs R {b}")

    def same(self, what, ours, theirs):
        self.count += 1
        if list(np.atleast_1d(ours)) != list(np.atleast_1d(theirs)):
            self.failures.append(f"{what}: ours {ours} vs R {theirs}")


P_VALUES = {"pval", "q_p", "egger_p", "egger_t_p", "begg_p", "QM_p", "QE_p", "test_moderator_p", "test_between_p",
            "permutation_p", "QM_permutation_p"}  # fmt: skip
EXACT = {"k", "k0", "trimfill_k0", "trimfill_r0_k0", "trimfill_side", "trimfill_r0_side", "pet_peese_uses",
         "influential", "subgroup", "q_df", "egger_df", "egger_t_df", "test_between_df",
         "permutation_exact"}  # fmt: skip


def _kind(key, default="iterative"):
    """p-values on the log scale, except after an optimizer (its relative error carries over to p linearly)."""
    if key in P_VALUES or key.endswith("_p"):
        return "optimizer_p" if default == "optimizer" else "p"
    return default


def _compare_record(c, where, ours: dict, theirs: dict, kind="iterative"):
    for key, value in theirs.items():
        if key in ("weight",):
            continue
        if key in EXACT or isinstance(value, str):
            c.same(f"{where}.{key}", ours.get(key), value)
        else:
            c.close(f"{where}.{key}", ours.get(key, np.nan), value, _kind(key, kind))


def _compare_table(c, where, table: pd.DataFrame, theirs: dict, kind="iterative"):
    for key, value in theirs.items():
        if key in EXACT:
            ours = table[key].astype(bool).tolist() if key == "influential" else table[key].tolist()
            c.same(f"{where}.{key}", ours if isinstance(value, list) else ours[0], value)
        elif isinstance(value, list) and len(value) == len(table):
            c.close(f"{where}.{key}", table[key], value, _kind(key, kind))
        else:  # a model statistic, repeated on every row of the table
            c.close(f"{where}.{key}", table[key].iloc[0], value, _kind(key, kind))


def compare(folder: Path, r: dict) -> Comparison:
    """R's numbers (``r``, the script's JSON) against the files of the analysis in ``folder``."""
    c = Comparison(folder.name)
    pooled, effects = read_json(folder / "pooled.json"), read_effects(folder / "effects.csv")
    dep = pooled.get("dependence")
    mv = dep is not None and dep["model"] != "aggregate"
    if "escalc" in r:  # closed forms: relative to the largest value compared
        used = effects[effects["included"]]
        c.close("escalc yi", r["escalc"]["max_abs_diff_yi"] / used["yi"].abs().max(), 0.0, "formula_scaled")
        c.close("escalc vi", r["escalc"]["max_abs_diff_vi"] / used["vi"].abs().max(), 0.0, "formula_scaled")
    _compare_record(c, "pooled", pooled, r["pooled"], "optimizer" if mv else "iterative")
    if "weight" in r["pooled"]:
        c.close("pooled.weight", effects.loc[effects["included"], "weight"], r["pooled"]["weight"])
    if "without_flagged" in r:
        _compare_record(c, "without_flagged", pooled["without_flagged"], r["without_flagged"],
                        "optimizer" if mv else "iterative")  # fmt: skip
    if mv:
        components = dep.get("sigma2") or dep.get("tau2")
        key = "sigma2" if dep.get("sigma2") else "tau2"
        c.close(f"dependence.{key}", [x["estimate"] for x in components], r["dependence"][key], "optimizer")
        c.close("dependence.QE", dep["QE"], r["dependence"]["QE"], "iterative")
        c.close("dependence.logLik", dep["logLik"], r["dependence"]["logLik"], "optimizer")
    if dep is not None and dep["model"] == "aggregate":
        c.close("aggregated yi", [a["yi"] for a in dep["aggregated"]], r["aggregated"]["yi"], "formula")
        c.close("aggregated vi", [a["vi"] for a in dep["aggregated"]], r["aggregated"]["vi"], "formula")
    if "robust" in r:
        _compare_record(c, "robust", dep["robust"], r["robust"], "optimizer" if mv else "iterative")
    for name in ("leave1out", "influence", "cumulative"):
        if name in r:
            _compare_table(c, name, read_table(folder / f"{name}.csv"), r[name])
    if "bias" in r:
        _compare_record(c, "bias", read_json(folder / "bias.json"), r["bias"])
    if "subgroups" in r:
        table = read_table(folder / "subgroups.csv", keep_default_na=False, na_values=[""], dtype={"subgroup": str})
        for column, theirs in r["subgroups"].items():
            rows = table[table["column"] == column].reset_index(drop=True)
            _compare_table(c, f"subgroups[{column}]", rows, theirs)
    if "metareg" in r:
        table = read_table(folder / "metareg.csv")
        theirs = dict(r["metareg"])
        failed = theirs.pop("permutations_failed", 0)
        if not theirs.get("permutation_exact") or failed:
            # R's random permutations are not numpy's, and metafor leaves permutations whose refit fails out of its
            # p-value (metarepro fits them all): only an exact test that R fitted whole can agree
            for key in ("permutation_p", "QM_permutation_p"):
                theirs.pop(key, None)
        _compare_table(c, "metareg", table, theirs)
    return c


def _check_all(rscript, workdir, folders, tmp_path):
    largest, failures, count = {}, [], 0
    for folder in folders:
        r = _run_script(rscript, workdir, folder, tmp_path / f"{folder.name}.json")
        c = compare(workdir / folder, r)
        failures += [f"{folder.name}: {f}" for f in c.failures]
        count += c.count
        for kind, (rel, where) in c.largest.items():
            if rel >= largest.get(kind, (-1,))[0]:
                largest[kind] = (rel, where)
    summary = "; ".join(f"{kind}: {rel:.2g} ({where})" for kind, (rel, where) in sorted(largest.items()))
    print(f"\n{len(folders)} analyses, {count} numbers compared with R; largest relative differences: {summary}")
    assert not failures, "\n".join(failures[:40])
    assert count > 0


@pytest.mark.rscript
def test_default_config_scripts_reproduce_every_number_in_r(default_run, tmp_path):
    rscript = _rscript()
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    folders = [Path("results") / name for name in config["analyses"]]
    _check_all(rscript, default_run, folders, tmp_path)


@pytest.mark.rscript
def test_example_config_scripts_reproduce_every_number_in_r(example_runs, tmp_path):
    rscript = _rscript()
    workdir, folders = example_runs
    _check_all(rscript, workdir, folders, tmp_path)


# The dependence models no shipped config runs (aggregate, multivariate, multilevel with z and CR1), on the default data
DEPENDENCE = {
    "defaults": {"measure": "SMD", "method": "REML", "test": "knha"},
    "analyses": {
        "il6_aggregate": {"title": "IL-6, aggregated per study", "data": "data/raw/cytokines_mdd.csv",
                          "where": {"marker": "IL-6"}, "dependence": {"model": "aggregate", "rho": 0.6},
                          "robust": "CR2", "subgroups": ["sample"]},
        "markers_multivariate": {"title": "IL-6, TNF-a, CRP", "data": "data/raw/cytokines_mdd.csv",
                                 "where": {"marker": ["IL-6", "TNF-a", "CRP"]}, "robust": "CR1",
                                 "dependence": {"model": "multivariate", "inner": "marker", "struct": "HCS",
                                                "rho": 0.5}},
        "il6_multilevel_z": {"title": "IL-6, three-level, z", "data": "data/raw/cytokines_mdd.csv",
                             "where": {"marker": "IL-6"}, "test": "z", "robust": "CR1",
                             "dependence": {"model": "multilevel", "levels": ["study_id"]}},
    },
}  # fmt: skip


@pytest.mark.rscript
def test_dependence_model_scripts_reproduce_every_number_in_r(tmp_path, monkeypatch):
    from metarepro.jobs.run import analysis_job

    rscript = _rscript()
    shutil.copytree(REPO / "data", tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    folders = []
    for name, analysis in DEPENDENCE["analyses"].items():
        settings = {"name": name, "defaults": DEPENDENCE["defaults"], "analysis": analysis}
        analysis_job(analysis["data"], settings, f"results/{name}", formats=("svg",))
        folders.append(Path("results") / name)
    _check_all(rscript, tmp_path, folders, tmp_path)


@pytest.mark.rscript
def test_a_wrong_number_is_caught(default_run, tmp_path):
    """The comparison can fail: R's estimate moved by 1e-6 (relative) is reported."""
    rscript = _rscript()
    folder = Path("results") / "il6_smd"
    r = _run_script(rscript, default_run, folder, tmp_path / "il6_smd.json")
    assert not compare(default_run / folder, r).failures
    r["pooled"]["estimate"] *= 1 + 1e-6
    r["bias"]["trimfill_k0"] += 1
    failures = compare(default_run / folder, r).failures
    assert any(f.startswith("pooled.estimate") for f in failures) and any("trimfill_k0" in f for f in failures)
    assert math.isfinite(r["pooled"]["estimate"])


@pytest.mark.rscript
def test_large_analysis_script_reads_its_values_from_effects(tmp_path, monkeypatch):
    """Above SCRIPT_INLINE_MAX_ROWS rows (set to 5 here; 10,000 in use) metafor.R holds no per-row R vectors: escalc's
    group data and the subgroup, moderator (a number and a text one) and cumulative-order values are extra columns
    of effects.csv, which the script reads; R then reproduces every number as the inline script does."""
    from metarepro.jobs.run import analysis_job
    from metarepro.present import metafor_script as module

    rscript = _rscript()
    shutil.copytree(REPO / "data", tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(module, "SCRIPT_INLINE_MAX_ROWS", 5)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    analysis = {**config["analyses"]["il6_smd"], "moderators": ["year", "medication"]}
    folder = Path("results") / "il6_smd"
    analysis_job(analysis["data"], {"name": "il6_smd", "defaults": config["defaults"], "analysis": analysis}, folder,
                 formats=("svg",))  # fmt: skip
    text = (folder / SCRIPT_NAME).read_text()
    assert "data.frame(" not in text and "stopifnot(identical(" not in text and "c(2" not in text
    effects = read_effects(folder / "effects.csv")
    extra = ["n1i", "m1i", "sd1i", "n2i", "m2i", "sd2i", "subgroup_sample", "subgroup_medication", "mod_year",
             "mod_medication", "order_key"]  # fmt: skip
    assert list(effects.columns[-len(extra):]) == extra
    assert effects.loc[~effects["included"], extra].isna().all().all()
    assert effects.loc[effects["included"], "mod_year"].notna().any()
    _check_all(rscript, tmp_path, [folder], tmp_path)
