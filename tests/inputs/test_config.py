"""The config: every shipped config validates; each mistake is one line naming file, line and key,
all mistakes at once, with "did you mean ...?" (metarepro.inputs.config)."""

import shutil
import time

import pytest
from conftest import REPO

from metarepro.inputs.config import ConfigError, check_config, format_errors, load_config, load_yaml

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
CONFIGS = sorted([REPO / "config/config.yaml", *(REPO / "config/examples").glob("*.yaml")])


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate(path, monkeypatch):
    monkeypatch.chdir(REPO)
    config, lines = load_config([path])
    assert check_config(config, SCHEMA, lines) == []
    for analysis in config["analyses"].values():
        assert (REPO / analysis["data"]).exists()



def test_every_example_config_writes_apart_from_the_default_run():
    """Caught (audit of issue 20): passos2015_ptsd_il6.yaml and qin2016_pd_il6.yaml set no ``results`` folder, so
    running either, as its header says, overwrote the default run's results/report.html, summary.csv and
    reproduction.csv with a one-analysis page. Expected: each example its own folder, named after its file."""
    examples = sorted((REPO / "config/examples").glob("*.yaml"))
    assert len(examples) >= 2  # at least passos2015_ptsd_il6 and qin2016_pd_il6: the loop cannot pass over nothing
    for path in examples:
        config, _ = load_yaml(path)
        assert config.get("results") == f"results/{path.stem}", path.name

def minimal(**analysis):
    return {"analyses": {"il6": {"title": "IL-6", "data": "x.csv", **analysis}}}


def problems(config):
    return check_config(config, SCHEMA, sheets=False)


@pytest.mark.parametrize("analysis", [{"measure": "VR"}, {"measure": "CVR"}, {"columns": {"t": None, "n_cases": "n1"}}])
def test_variability_measures_and_a_null_mapping_are_accepted(analysis):
    assert problems(minimal(**analysis)) == []


def test_defaults_are_filled_in():
    config = minimal()
    assert problems(config) == []
    assert config["defaults"] == {
        "measure": "SMD", "method": "REML", "test": "z", "level": 95, "vtype": "LS",
        "preset": "metafor", "exclude_converted": False,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (minimal(methd="DL"), "(analyses → il6 → methd): unknown key 'methd' (did you mean 'method'?)"),
        (minimal(method="DerSimonian"), "'DerSimonian' is not one of DL, REML"),
        (minimal(method="reml"), "(did you mean 'REML'?)"),
        (minimal(where={"marker": {"$ne": "x"}}), "(analyses → il6 → where → marker): a mapping is not allowed"),
        ({"analyses": {"bad name": {"title": "t", "data": "x.csv"}}}, "'bad name' is not a valid analysis name"),
        ({**minimal(), "defautls": {}}, "unknown key 'defautls' (did you mean 'defaults'?)"),
        (minimal(seed=-5), "(analyses → il6 → seed): -5 must be at least 0"),
        (minimal(permutations=1_000_000_000), "1000000000 must be at most 100000"),
        (minimal(level=0.05), "level 0.05 is ambiguous: metafor reads it as α, a 95% interval"),
        (minimal(level=100), "100 must be below 100"),
        (minimal(columns={"n_case": "n1i"}), "'n_case' is not a metarepro column (did you mean 'n_cases'?)"),
        ({"analyses": {"il6": {"data": "x.csv"}}}, "(analyses → il6): missing key 'title'"),
        ({**minimal(), "figure_formats": ["png"]}, "(figure_formats): must include svg (Formats of every figure"),
        ({**minimal(), "figure_formats": ["svg", "svg"]}, "(figure_formats): names an item twice"),
        ({**minimal(), "figure_formats": ["svg", "jpg"]}, "(figure_formats → 1): 'jpg' is not one of svg, png, pdf"),
    ],
)
def test_each_mistake_is_one_line_with_the_key_named(config, expected):
    found = problems(config)
    assert len(found) == 1 and expected in found[0] and "\n" not in found[0]


def test_all_mistakes_at_once_and_never_the_instance_or_schema():
    config = {"analyses": {"a": {"title": "t", "data": "x.csv", "methd": "DL", "level": 200, "subgroups": ["$x"]}},
              "defautls": {"x": list(range(1000))}}  # fmt: skip
    found = problems(config)
    assert len(found) == 4
    message = format_errors(found)
    assert len(message) < 1000 and "999" not in message and "$schema" not in message


def write(tmp_path, text, name="my.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_duplicate_keys_are_refused_with_both_lines(tmp_path):
    path = write(tmp_path, "analyses:\n  il6:\n    title: a\n    data: x.csv\n  il6:\n    title: b\n    data: y.csv\n")
    with pytest.raises(ConfigError) as err:
        load_yaml(path)
    assert f"{path}, line 5: key 'il6' appears twice in the same mapping (first at line 2)" in str(err.value)


def test_yaml_11_booleans_and_numbers_stay_as_written(tmp_path):
    path = write(tmp_path, "analyses:\n  2024:\n    title: t\n    data: x.csv\n    where: {marker: NO, sample: on}\n"
                           "  001:\n    title: u\n    data: x.csv\n    exclude_converted: true\n")  # fmt: skip
    config, lines = load_config([path])
    assert list(config["analyses"]) == ["2024", "001"]
    assert config["analyses"]["2024"]["where"] == {"marker": "NO", "sample": "on"}
    assert config["analyses"]["001"]["exclude_converted"] is True
    assert check_config(config, SCHEMA, lines, sheets=False) == []


def test_errors_name_the_line_of_the_key(tmp_path):
    path = write(tmp_path, "analyses:\n  il6:\n    title: t\n    data: x.csv\n    methd: DL\n")
    config, lines = load_config([path])
    assert check_config(config, SCHEMA, lines) == [
        f"{path}, line 5 (analyses → il6 → methd): unknown key 'methd' (did you mean 'method'?)"
    ]


def test_billion_laughs_is_refused_quickly(tmp_path):
    levels = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = write(tmp_path, "unknown:\n" + "\n".join("  " + line for line in levels) + "\nanalyses: {}\n")
    start = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        load_config([path])
    assert time.perf_counter() - start < 5
    assert "values through YAML aliases" in str(err.value) and len(str(err.value)) < 300


def test_sheet_columns_named_by_the_config_are_checked_before_any_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sheet.csv").write_text("study_id,year,sample,n_cases\na,2001,serum,10\n")
    path = write(tmp_path, "analyses:\n  il6:\n    title: t\n    data: sheet.csv\n    subgroups: [sampel]\n"
                           "    moderators: [yaer, sample]\n  crp:\n    title: t\n    data: missing.csv\n")  # fmt: skip
    config, lines = load_config([path])
    found = check_config(config, SCHEMA, lines)
    assert found == [
        "my.yaml, line 5 (analyses → il6 → subgroups): sheet.csv has no column 'sampel' (did you mean 'sample'?)",
        "my.yaml, line 6 (analyses → il6 → moderators): sheet.csv has no column 'yaer' (did you mean 'year'?)",
        "analysis crp: missing.csv: no such file. Check the 'data' path of the analysis in your config.",
    ]


def test_numbers_where_text_is_meant_are_kept_as_written(tmp_path):
    path = write(tmp_path, "analyses:\n  a:\n    title: 007\n    data: x.csv\n    unit: 1e5\n    compare_with: [12]\n"
                           "    where: {study_id: [001, 1.50], year: 2010}\n")  # fmt: skip
    config, lines = load_config([path])
    assert check_config(config, SCHEMA, lines, sheets=False) == []
    analysis = config["analyses"]["a"]
    assert (analysis["title"], analysis["unit"], analysis["compare_with"]) == ("007", "1e5", ["12"])
    assert analysis["where"] == {"study_id": ["001", "1.50"], "year": "2010"}


# ---------------------------------------------------------------------------------------------------------------
# files that are not a config: one line naming the file and what to do, never a traceback
# ---------------------------------------------------------------------------------------------------------------

VALID = "analyses:\n  il6:\n    title: IL-6 − Müller\n    data: x.csv\n"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "my.yaml: the file is empty; a config needs at least 'analyses:'"),
        (b"# only a comment\n\n", "my.yaml: the file is empty"),
        (VALID.encode("utf-16"), "my.yaml: the file is UTF-16 (Windows 'Unicode') text, not UTF-8; save it as UTF-8"),
        (VALID.encode("utf-16-le"), "my.yaml: the file is UTF-16"),  # no byte-order mark
        (VALID.encode("utf-16-be"), "iconv -f UTF-16 -t UTF-8 my.yaml > utf8.yaml"),
        (VALID.replace("−", "-").encode("latin-1"), "my.yaml, line 3: byte 0xfc is not UTF-8 (probably Latin-1"),
        (b'analyses: !!python/object/apply:os.system ["echo hi"]\n',
         "my.yaml, line 1: the YAML tag !!python/object/apply:os.system is not allowed"),
        (b"analyses:\n  a: !!python/name:os.system\n", "my.yaml, line 2: the YAML tag !!python/name:os.system is not"),
        (b"analyses:\n  a: !custom x\n", "my.yaml, line 2: the YAML tag !custom is not allowed"),
        (b"- analyses\n- defaults\n", "my.yaml: a config is a mapping of keys (analyses:, defaults:, ...), not a list"),
        (b"analyses\n", "my.yaml: a config is a mapping of keys (analyses:, defaults:, ...), not text"),
        (b"analyses:\n  a:\n    title: t\x07\n", "my.yaml, line 3: character U+0007 is a control character"),
    ],
    ids=["empty", "comments", "utf16-bom", "utf16le", "utf16be", "latin1", "python-apply", "python-name", "tag",
         "list", "scalar", "control"],
)  # fmt: skip
def test_a_file_that_is_not_a_config_is_one_line_naming_it(tmp_path, monkeypatch, content, expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my.yaml").write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_config(["my.yaml"])
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_utf8_with_non_ascii_text_is_a_config(tmp_path):
    config, _ = load_config([write(tmp_path, VALID)])
    assert config["analyses"]["il6"]["title"] == "IL-6 − Müller"


# ---------------------------------------------------------------------------------------------------------------
# aliases: capped by the characters they expand to, not only by the values
# ---------------------------------------------------------------------------------------------------------------


def aliased(copies, length=50_000):
    """``copies`` analyses whose titles are one alias of a ``length``-character string (what made Snakemake write
    211 MB of job metadata from a 51 kB config with 200 copies)."""
    analyses = [f"  a{i}:\n    title: {'&t ' + 'x' * length if i == 0 else '*t'}\n    data: x.csv\n"
                for i in range(copies)]  # fmt: skip
    return "analyses:\n" + "".join(analyses)


def test_aliases_expanding_past_a_million_characters_are_refused(tmp_path):
    path = write(tmp_path, aliased(200))
    assert path.stat().st_size < 60_000
    start = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        load_config([path])
    assert time.perf_counter() - start < 2
    # 'analyses' (8) + keys a0..a199 (10 x 2 + 90 x 3 + 100 x 4 = 690) + 'title', 'data', 'x.csv' per analysis
    # (200 x 14 = 2,800) + the 200 titles once expanded (200 x 50,000)
    assert f"{path}: holds 10,003,498 characters" in str(err.value) and "more than 1,000,000" in str(err.value)
    assert "\n" not in str(err.value) and len(str(err.value)) < 300


def test_aliases_below_the_character_cap_are_read(tmp_path):
    config, lines = load_config([write(tmp_path, aliased(19))])  # 19 x 50,000 = 950,000 characters of titles
    assert len(config["analyses"]) == 19 and config["analyses"]["a18"]["title"] == "x" * 50_000
    assert check_config(config, SCHEMA, lines, sheets=False) == []


# ---------------------------------------------------------------------------------------------------------------
# numbers that are not finite
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("written", [".nan", ".NaN", ".inf", "-.inf", "+.Inf", "1.0e+999"])
@pytest.mark.parametrize(
    ("setting", "key"),
    [("    dependence: {model: aggregate, rho: VALUE}\n", "(analyses → il6 → dependence → rho)"),
     ("    level: VALUE\n", "(analyses → il6 → level)")],
    ids=["rho", "level"],
)  # fmt: skip
def test_nan_and_infinity_are_refused_with_file_line_and_key(tmp_path, written, setting, key):
    path = write(tmp_path, "analyses:\n  il6:\n    title: t\n    data: x.csv\n" + setting.replace("VALUE", written))
    config, lines = load_config([path])
    found = check_config(config, SCHEMA, lines, sheets=False)
    assert found == [f"{path}, line 5 {key}: {written} is not a finite number (YAML reads .nan as not-a-number and "
                     ".inf as infinity); give a number"]  # fmt: skip


def test_every_non_finite_number_at_once_and_finite_ones_pass(tmp_path):
    path = write(tmp_path, "defaults:\n  level: .nan\nanalyses:\n  il6:\n    title: t\n    data: x.csv\n"
                           "    dependence: {model: aggregate, rho: -.inf}\n"
                           "    where: {year: .nan}\n")  # fmt: skip
    config, lines = load_config([path])
    found = check_config(config, SCHEMA, lines, sheets=False)
    assert [line.split(":")[0] for line in found] == [f"{path}, line 7 (analyses → il6 → dependence → rho)",
                                                      f"{path}, line 2 (defaults → level)"]  # fmt: skip
    assert config["analyses"]["il6"]["where"] == {"year": ".nan"}  # where compares text: '.nan' as written
    # with a schema error elsewhere, both are said at once
    path = write(
        tmp_path, "analyses:\n  il6:\n    title: t\n    data: x.csv\n    seed: .nan\n    methd: DL\n", "two.yaml"
    )
    config, lines = load_config([path])
    assert check_config(config, SCHEMA, lines, sheets=False) == [
        f"{path}, line 6 (analyses → il6 → methd): unknown key 'methd' (did you mean 'method'?)",
        f"{path}, line 5 (analyses → il6 → seed): .nan is not a finite number (YAML reads .nan as not-a-number and "
        ".inf as infinity); give a number",
    ]
    finite = write(tmp_path, "analyses:\n  il6:\n    title: t\n    data: x.csv\n    level: 90\n"
                             "    dependence: {model: aggregate, rho: -0.5}\n", "finite.yaml")  # fmt: skip
    config, lines = load_config([finite])
    assert check_config(config, SCHEMA, lines, sheets=False) == []


# ---------------------------------------------------------------------------------------------------------------
# results stays inside the working directory unless the config says otherwise
# ---------------------------------------------------------------------------------------------------------------


def results_problems(tmp_path, results, opt_in=""):
    path = write(tmp_path / "work", f"analyses:\n  il6:\n    title: t\n    data: x.csv\n{opt_in}results: {results}\n")
    config, lines = load_config([path])
    return check_config(config, SCHEMA, lines, sheets=False)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path / "work"


@pytest.mark.parametrize(
    ("results", "how"),
    [("../x", ""), ("results/../../x", ""), ("ABS/elsewhere/x", ""), ("link/x", "through a symlink, "),
     ("link", "through a symlink, ")],
)  # fmt: skip
def test_results_outside_the_working_directory_is_refused(tmp_path, workdir, results, how):
    (workdir / "link").symlink_to(tmp_path / "elsewhere")
    results = results.replace("ABS", str(tmp_path))
    found = results_problems(tmp_path, results)
    assert len(found) == 1 and "\n" not in found[0]
    assert found[0].startswith(f"my.yaml, line 5 (results): '{results}' leads {how}outside the working directory "
                               f"{workdir.resolve()} (to {tmp_path.resolve()}")  # fmt: skip
    assert found[0].endswith("or add allow_results_outside_workdir: true")


@pytest.mark.parametrize("results", ["results/my_review", ".", "./out", "a/../b", "ABS/work/out", "inner/x"])
def test_results_inside_the_working_directory_is_accepted(tmp_path, workdir, results):
    (workdir / "real").mkdir()
    (workdir / "inner").symlink_to(workdir / "real")  # a symlink that stays inside
    assert results_problems(tmp_path, results.replace("ABS", str(tmp_path))) == []


@pytest.mark.parametrize("results", ["../x", "ABS/elsewhere/x"])
def test_results_outside_is_accepted_when_the_config_says_so(tmp_path, workdir, results):
    results = results.replace("ABS", str(tmp_path))
    assert results_problems(tmp_path, results, "allow_results_outside_workdir: true\n") == []
    found = results_problems(tmp_path, results, "allow_results_outside_workdir: false\n")
    assert len(found) == 1 and "outside the working directory" in found[0]
    found = results_problems(tmp_path, results, "allow_results_outside_workdir: yes\n")  # YAML 1.2: text, not true
    assert found == ["my.yaml, line 5 (allow_results_outside_workdir): must be true or false, not text"]


def test_run_config_refuses_results_outside_and_writes_nothing(tmp_path, workdir):
    from metarepro.inputs.sheet import SheetError
    from metarepro.jobs.run import run_config

    shutil.copy(REPO / "data/raw/normand1999_stroke_los.csv", workdir / "sheet.csv")
    path = write(workdir, "results: ../elsewhere/out\nanalyses:\n  los:\n    title: t\n    data: sheet.csv\n")
    with pytest.raises(SheetError) as err:
        run_config(path)
    assert "my.yaml, line 1 (results): '../elsewhere/out' leads outside the working directory" in str(err.value)
    assert list((tmp_path / "elsewhere").iterdir()) == [] and sorted(p.name for p in workdir.iterdir()) == [
        "my.yaml", "sheet.csv"]  # fmt: skip


def test_the_command_names_what_snakemake_cannot_read(tmp_path, monkeypatch, capsys):
    """Snakemake reads a --configfile before the workflow runs and says only "not valid JSON or YAML"."""
    from metarepro.inputs.config import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_bytes(VALID.encode("utf-16"))
    (tmp_path / "x.csv").write_text("study_id,study\na,A\n")
    (tmp_path / "good.yaml").write_text(VALID)
    assert main(["bad.yaml"]) == 1
    assert capsys.readouterr().err == (
        "metarepro: bad.yaml: the file is UTF-16 (Windows 'Unicode') text, not UTF-8; save it as UTF-8 (an editor's "
        "'Save as', encoding UTF-8), or convert it: iconv -f UTF-16 -t UTF-8 bad.yaml > utf8.yaml\n"
    )
    assert main(["good.yaml"]) == 0
    assert capsys.readouterr().out == "metarepro: good.yaml: no problems found\n"


def test_the_settings_defaults_are_the_schema_s_and_the_readme_s():
    """One home of option knowledge: Settings(), Settings.from_config({}) and the per-analysis options take their
    defaults from the schema (read here independently), and config/README.md documents the same values."""
    import re
    from dataclasses import asdict

    import yaml

    from metarepro.inputs.config import analysis_default, resolve_settings
    from metarepro.pipeline.analysis import Settings

    schema = yaml.safe_load(SCHEMA.read_text())
    given = {k: p["default"] for k, p in schema["properties"]["defaults"]["properties"].items() if "default" in p}
    assert given == {"measure": "SMD", "method": "REML", "test": "z", "level": 95, "vtype": "LS",
                     "preset": "metafor", "exclude_converted": False}  # fmt: skip
    for settings in (Settings(), Settings.from_config({})):
        assert {k: v for k, v in asdict(settings).items() if k in given} == given
        assert settings.unit is None and settings.dependence is None
    readme = (REPO / "config/README.md").read_text()
    for key, value in given.items():
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{key}` |"))
        assert re.search(rf"`{str(value).lower()}`( \(default\))?", row.lower()), key
    assert (analysis_default("permutations"), analysis_default("seed")) == (1000, 1)
    assert "(default 1000;" in readme and "seed (default 1)" in readme
    assert analysis_default("cumulative_order") == "year" and "(default `year`)" in readme
    # metafor's other spellings and the preset, over the analysis's own method and vtype
    resolved = resolve_settings({"method": "FE", "level": 0.9}, {"test": "knha"})
    assert (resolved["method"], resolved["level"], resolved["test"]) == ("EE", 90, "knha")
    revman = Settings.from_config({"preset": "revman", "method": "REML", "vtype": "UB"})
    assert (revman.method, revman.vtype) == ("DL", "RM5")


def test_inputs_and_quality_import_nothing_from_the_layers_above():
    """inputs/ (sheets, config, published sheets) and quality/ (row rules) sit below pipeline/, present/ and jobs/:
    none of their modules imports those, at the top or inside a function."""
    import ast

    modules = [*(REPO / "src/metarepro/inputs").glob("*.py"), *(REPO / "src/metarepro/quality").glob("*.py")]
    assert {p.name for p in modules} >= {"sheet.py", "config.py", "published.py"}  # the folders are where they were
    for path in modules:
        tree = ast.parse(path.read_text())
        imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
        imported += [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
        upward = [m for m in imported if m.split(".")[:2] in (["metarepro", "pipeline"], ["metarepro", "present"],
                                                               ["metarepro", "jobs"])]  # fmt: skip
        assert upward == [], path.name


def test_default_titles_do_not_promise_a_robust_interval_the_atlas_does_not_draw():
    """The atlas and headline draw each analysis's model-based fit (pooled.json's estimate and CI); a cluster-robust
    (CR2) interval is shown only in the analysis's own forest plot. A title ending "CR2" over a model-based row
    misled a reader (issue 20), so no default title names a robust method."""
    config, _ = load_yaml(REPO / "config" / "config.yaml")
    promising = [name for name, a in config["analyses"].items() if "CR2" in a["title"] or "robust" in a["title"]]
    assert promising == []
