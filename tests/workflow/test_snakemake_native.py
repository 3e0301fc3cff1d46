"""The Snakemake conventions of the workflow: `snakemake --report`, profiles, module use, CI workflow, terminal."""

import csv
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from conftest import REPO, assert_close, load_reference

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]


def default_jobs() -> set[str]:
    """The analysis jobs the default config makes: its analyses in config order, at most the schema's default
    analyses_per_job in a job, as few jobs as that allows (workflow/rules/common.smk)."""
    analyses = yaml.safe_load((REPO / "config/config.yaml").read_text())["analyses"]
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    per_job = schema["properties"]["analyses_per_job"]["default"]
    return {f"analyses_{i + 1}" for i in range(-(-len(analyses) // per_job))}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def snakemake_report(default_run):
    """`snakemake --report report.zip` of the default run (built once for the tests below)."""
    cmd = [*SNAKEMAKE, "--cores", "1", "--configfile", "config/config.yaml", "--report", "report.zip"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=default_run)
    assert result.returncode == 0, result.stderr[-3000:]
    return default_run / "report.zip"


@pytest.mark.workflow
def test_snakemake_report_holds_every_figure_and_table(default_run, snakemake_report):
    """Every SVG, table and the HTML page of the default run is in report.zip, byte for byte, in its category."""
    with zipfile.ZipFile(snakemake_report) as archive:
        names = archive.namelist()
        zipped = {(name.rsplit("/", 1)[-1], sha256(archive.read(name))) for name in names}
        page = archive.read("report/report.html").decode()
    # section.html: an analysis's part of report.html (rendered by its job), inside the page, not a result of its own
    results = [p for p in (default_run / "results").rglob("*")
               if p.suffix in (".svg", ".csv", ".json", ".html", ".R") and p.name != "section.html"]  # fmt: skip
    assert {p.suffix for p in results} == {".svg", ".csv", ".json", ".html", ".R"}  # .R: each analysis's metafor.R
    missing = [str(p) for p in results if (p.name, sha256(p.read_bytes())) not in zipped]
    assert missing == []
    assert len(names) == len(results) + 1  # and nothing else but the report's own page
    for category in ('"Overview"', '"Per analysis"', '"il6_smd"', '"crp_md"'):
        assert category in page


@pytest.mark.workflow
def test_snakemake_report_captions_name_the_analysis_and_the_figure(default_run, snakemake_report):
    """Caught: the captions read ``snakemake.wildcards.analysis`` and ``.kind``/``.column``, which the rules (one per
    analysis, no wildcards) do not have: every caption said "Analysis :" and bubble plots were captioned "forest plot
    by subgroup of" (with a broken literal). Expected: the analysis name (the result's folder) in every per-analysis
    caption, bubble plots and subgroup forest plots each in their own words naming their moderator or column, and no
    docutils error in any caption."""
    page = zipfile.ZipFile(snakemake_report).read("report/report.html").decode()
    start = page.index("var results = {") + len("var results = ")
    results, _ = json.JSONDecoder().raw_decode(page, start)  # the report's table of results, with their captions
    captions = {path: record["caption"] for path, record in results.items()}
    assert all("problematic" not in caption and "Analysis :" not in caption for caption in captions.values())
    per_analysis = {path: caption for path, caption in captions.items() if path.count("/") == 2}
    assert len(per_analysis) > 100
    for path, caption in per_analysis.items():
        assert f'Analysis <tt class="docutils literal">{path.split("/")[1]}</tt>:' in caption, path
    figures = {kind: {p: c for p, c in per_analysis.items() if f"/{kind}_" in p}
               for kind in ("bubble", "forest_subgroups")}  # fmt: skip
    assert figures["bubble"] and figures["forest_subgroups"]
    for path, caption in figures["bubble"].items():
        moderator = path.rsplit("/bubble_", 1)[1].removesuffix(".svg")
        assert "bubble plot" in caption and "forest plot" not in caption, path
        assert f'<tt class="docutils literal">{moderator}</tt>' in caption, path
    for path, caption in figures["forest_subgroups"].items():
        column = path.rsplit("/forest_subgroups_", 1)[1].removesuffix(".svg")
        assert "forest plot by subgroup of" in caption and "bubble" not in caption, path
        assert f'<tt class="docutils literal">{column}</tt>' in caption, path


RULE_RESOURCES = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings, StorageSettings

with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
    workflow = api.workflow(ResourceSettings(cores=1), ConfigSettings(configfiles=[Path("config/config.yaml")]),
                            StorageSettings(), snakefile=Path(sys.argv[1]), workdir=Path("."))
    workflow.list_rules()
    rules = workflow._workflow.rules  # the parsed rules (no public API lists a rule's resources)

    def value(rule, resource):
        if not resource.is_evaluable():
            return resource.value
        # sized from the rule's input (its analyses' sheets), as Snakemake evaluates it for the job
        class Input(list):
            sheets = rule.input.get("sheets", [])
            size_mb = sum(Path(f).stat().st_size for f in rule.input) / 1024**2

        return resource.evaluate(wildcards={}, input=Input(rule.input)).value

    print(json.dumps({r.name: {k: value(r, v) for k, v in r.resources.items() if k in ("mem_mb", "runtime")}
                      for r in rules}))
"""


@pytest.mark.workflow
def test_slurm_profile_dry_run_and_each_rule_states_its_resources(tmp_path):
    """profiles/slurm with the slurm executor plugin plans the default config (a dry run needs no sbatch), and
    every job-running rule (one per 12 analyses, config analyses_per_job; the report) states the memory and time
    SLURM is asked for; each analysis keeps a target rule of its own (a local rule: it runs no job)."""
    shutil.copytree(REPO / "data", tmp_path / "data")
    shutil.copytree(REPO / "config", tmp_path / "config")
    cmd = [*SNAKEMAKE, "--profile", str(REPO / "profiles/slurm"), "--configfile", "config/config.yaml", "--dry-run"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Using profiles {REPO / 'profiles/slurm'}" in out and "This was a dry-run" in out
    assert yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())["executor"] == "slurm"
    analyses = yaml.safe_load((REPO / "config/config.yaml").read_text())["analyses"]
    listed = subprocess.run([sys.executable, "-c", RULE_RESOURCES, str(REPO / "Snakefile")], capture_output=True,
                            text=True, timeout=600, cwd=tmp_path)  # fmt: skip
    assert listed.returncode == 0, listed.stderr[-3000:]
    resources = json.loads(listed.stdout.strip().splitlines()[-1])
    jobs = default_jobs() | {"report"}
    assert set(resources) == {f"analysis_{name}" for name in analyses} | jobs | {"all"}
    assert re.search(r"^report +1$", out, flags=re.M)
    for rule, given in resources.items():
        if rule in jobs:  # the target rules are localrules: they run no job
            assert given["mem_mb"] >= 1000 and given["runtime"] >= 5, rule
            assert re.search(rf"^{rule} +1$", out, flags=re.M), f"{rule} is not planned"


def commands(text):
    """Shell commands of a README or a workflow step: each line, split at `&&` (comments and blank lines dropped)."""
    lines = [line.strip() for line in text.splitlines()]
    return [part.strip() for line in lines if line and not line.startswith("#") for part in line.split("&&")]


def test_ci_workflow_is_valid_and_runs_the_readme_commands():
    workflow_file = REPO / ".github/workflows/report.yml"
    cmd = [str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
           str(workflow_file)]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr

    readme = (REPO / "README.md").read_text()
    main_job = re.search(r"run the main job.*?```bash\n(.*?)```", readme, flags=re.DOTALL).group(1)
    inline = re.findall(r"`(\.venv/bin/[^`]+)`", readme)
    steps = yaml.safe_load(workflow_file.read_text())["jobs"]["report"]["steps"]
    ran = [c for step in steps if "run" in step for c in commands(step["run"])]
    setup = commands(steps[2]["run"])
    assert setup == commands(main_job)  # set-up and the main job exactly as the README gives them
    ours = [c for c in ran if c.startswith((".venv/bin/", "python3 "))]
    assert set(ours) <= set(commands(main_job)) | set(inline)
    # a rerun from scratch writes the same bytes: CI checks it on every output of the default config (the test
    # below, on one analysis in another folder)
    # the rerun the byte-identity check compares: every file computed again (no kept copies, metarepro.jobs.reuse)
    assert ".venv/bin/snakemake --cores 2 --forceall --config reuse_unchanged=False" in ours
    assert any("sha256sum | diff " in c for c in ran)  # the rerun is compared with the first run
    assert steps[-1]["uses"].startswith("actions/upload-artifact") and steps[-1]["with"]["path"] == "results/"


NORMAND = {  # the LOS sheet of test_workflow.py, SMD by REML + Knapp-Hartung, with its own results folder
    "results": "mine",
    "defaults": {"method": "REML", "test": "knha"},
    "analyses": {"los_smd": {"title": "LOS, SMD", "data": "sheet.csv", "where": {"marker": "length_of_stay"}}},
}
OUTER = """
configfile: "my.yaml"


module metarepro:
    snakefile:
        "{snakefile}"
    config:
        config
    prefix:
        "mr"


use rule * from metarepro as mr_*
"""


@pytest.mark.workflow
def test_module_with_prefix_end_to_end(tmp_path):
    """metarepro used as a module of another workflow: every output under the prefix and the config's results
    folder, the sheet read where the outer workflow's config names it, and the numbers those of R metafor."""
    shutil.copy(REPO / "data/raw/normand1999_stroke_los.csv", tmp_path / "sheet.csv")
    (tmp_path / "my.yaml").write_text(yaml.safe_dump(NORMAND))
    (tmp_path / "Snakefile").write_text(OUTER.replace("{snakefile}", str(REPO / "Snakefile")))
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "mr_all"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    written = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert written == ["Snakefile", "mr", "my.yaml", "sheet.csv"]
    out = tmp_path / "mr/mine"
    pooled = json.loads((out / "los_smd/pooled.json").read_text())
    expected = next(f for f in load_reference()["cases"] if f["name"] == "normand1999_SMD_LS")["fits"]
    expected = next(f for f in expected if f["method"] == "REML" and f["test"] == "knha")
    for field in ("estimate", "ci_low", "ci_high", "tau2", "i2"):
        assert_close(pooled[field], expected[field], field)
    page = (out / "report.html").read_text()
    assert "LOS, SMD" in page and '<figure class="figure"><svg' in page
    for name in ("summary.csv", "reproduction.csv", "los_smd/forest.svg", "los_smd/funnel.svg", "los_smd/bias.json"):
        assert (out / name).exists(), name


@pytest.mark.workflow
def test_a_researchers_results_folder_keeps_apart_from_the_default(tmp_path):
    """With `results: results/mine` every output of the run is under results/mine/, none where the default run
    writes (results/summary.csv, results/report.html, results/{analysis}/)."""
    shutil.copy(REPO / "data/raw/normand1999_stroke_los.csv", tmp_path / "sheet.csv")
    (tmp_path / "my.yaml").write_text(yaml.safe_dump({**NORMAND, "results": "results/mine"}))
    cmd = [*SNAKEMAKE, "--configfile", "my.yaml", "--summary"]  # every output the run would write
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = [line.split("\t")[0] for line in result.stdout.splitlines()[1:]]
    assert len(outputs) >= 15 and "results/mine/report.html" in outputs
    assert [p for p in outputs if not p.startswith("results/mine/")] == []


@pytest.mark.workflow
def test_terminal_ends_with_the_report_and_one_line_per_analysis(default_run):
    """The default run's terminal: short lines (rule all's inputs not listed), and at the end the report's path and
    each analysis of summary.csv with its k, estimate and CI."""
    lines = (default_run / "terminal.txt").read_text().splitlines()
    assert max(len(line) for line in lines) < 300
    assert not any(line.startswith(("localrule all:", "rule all:")) for line in lines)
    with open(default_run / "results/summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    start = lines.index(f"Report: {(default_run / 'results/report.html').resolve()}")
    shown = lines[start + 1 : start + 1 + len(rows)]
    for row, line in zip(rows, shown, strict=True):
        name, k, label, estimate, ci = re.fullmatch(r"  (\S+) +k= *(\d+)  (\S+) (\S+) \((\S+ to \S+)\)", line).groups()
        assert (name, int(k)) == (row["analysis"], int(row["k"]))
        scale = "_r" if label == "r" else "_ratio" if row.get("estimate_ratio") else ""  # ROM "ratio", VR, CVR
        assert label in (row["measure"], "ratio", "r")
        assert float(estimate) == pytest.approx(float(row[f"estimate{scale}"]), abs=5e-4)
        low, high = (float(v) for v in ci.split(" to "))
        assert (low, high) == pytest.approx((float(row[f"ci_low{scale}"]), float(row[f"ci_high{scale}"])), abs=5e-4)
    assert len(rows) == len(yaml.safe_load((REPO / "config/config.yaml").read_text())["analyses"])


@pytest.mark.workflow
def test_workflow_parses_with_snakemake_only(tmp_path):
    """Building the DAG needs no metarepro (so --sdm conda can give the jobs their own environment): with the
    package hidden, the default config still plans every job, and a bad value is still stopped by the schema."""
    hidden = tmp_path / "hidden/metarepro"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ImportError("metarepro is not installed here")\n')
    shutil.copytree(REPO / "data", tmp_path / "data")
    shutil.copytree(REPO / "config", tmp_path / "config")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "hidden")}
    result = subprocess.run([*SNAKEMAKE, "--dry-run"], capture_output=True, text=True, timeout=600, cwd=tmp_path,
                            env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    # the default analyses in jobs of at most analyses_per_job (12), the report and the target rule
    jobs = default_jobs()
    planned = "".join(rf"^{job} +1\n" for job in sorted(jobs))
    assert re.search(rf"{planned}(.*\n)*^total +{len(jobs) + 2}$", result.stdout, flags=re.M), result.stdout
    bad = subprocess.run([*SNAKEMAKE, "--dry-run", "--config", "figure_formats=[png]"], capture_output=True,
                         text=True, timeout=600, cwd=tmp_path, env=env)  # fmt: skip
    assert bad.returncode != 0 and "figure_formats" in bad.stdout + bad.stderr


@pytest.mark.workflow
def test_a_rerun_of_a_default_analysis_in_another_folder_is_byte_identical(default_run, tmp_path):
    """Every file of one analysis of the default run (tables, JSON, SVG, its section of the report) is the same
    bytes when it runs again from nothing, alone in its job (analyses_per_job: 1), in another folder: in the default
    run it was the fifth analysis of its job, after tnf_smd's subgroups and moderators, so nothing an analysis leaves
    in the job's process changes the next one's files. CI's rerun with --forceall (checked above) does this for
    every output in the same folder; a second whole default run here took 130-180 s of the suite."""
    shutil.copytree(REPO / "data", tmp_path / "data")
    shutil.copytree(REPO / "config", tmp_path / "config")
    analysis = "results/crp_smd"  # subgroups, moderators and every figure of an analysis
    result = subprocess.run([*SNAKEMAKE, "--cores", "2", f"{analysis}/pooled.json", "--config", "analyses_per_job=1"],
                            capture_output=True, text=True, timeout=900, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]

    def hashes(folder):
        return {str(p.relative_to(folder)): sha256(p.read_bytes()) for p in folder.rglob("*") if p.is_file()}

    first, second = hashes(default_run / analysis), hashes(tmp_path / analysis)
    assert len(first) > 15 and {p.rsplit(".", 1)[-1] for p in first} == {"csv", "json", "svg", "html", "R"}
    assert [name for name in first if first[name] != second.get(name)] == []
    assert set(first) == set(second) and not (tmp_path / "results/summary.csv").exists()


def test_atlas_panels_draw_only_analyses_whose_group_words_they_print(default_run):
    """An atlas panel prints one set of group and direction words ("Hedges' g (MDD − controls)", "favours placebo"):
    an analysis that gives itself other labels (the treatment trials: anti-inflammatory vs placebo) is drawn in a
    panel of its own, titled with its groups, never under MDD's words."""
    page = (default_run / "results/report.html").read_text()
    analyses = yaml.safe_load((REPO / "config/config.yaml").read_text())["analyses"]
    panels = {}
    for match in re.finditer(r'<title id="[^"]*">Pooled estimates: ([^<]*)</title>', page):
        svg = page[match.start():page.index("</svg>", match.start())]
        panels[html.unescape(match.group(1))] = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", svg)))
    own = {name: a["labels"] for name, a in analyses.items() if a.get("labels")}
    assert own  # the default config has such analyses (treatment_smd, treatment_response_rr/_or)
    for name, labels in own.items():
        words = analyses[name]["title"].split(":")[0]
        holding = [title for title, text in panels.items() if words in text]
        assert holding and all(title.endswith(f"({labels['cases']} vs {labels['controls']})") for title in holding)
        assert all(labels["left"] in panels[t] and labels["right"] in panels[t] for t in holding)
    for title, text in panels.items():  # MDD's axis words only on the panels of the analyses without own labels
        assert ("(MDD" in text or "in MDD" in text) == (not title.endswith("placebo)")), title
