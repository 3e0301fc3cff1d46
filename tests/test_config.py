"""The config: every shipped config validates; each mistake is one line naming file, line and key,
all mistakes at once, with "did you mean ...?" (metarepro.config)."""

import time

import pytest
from conftest import REPO

from metarepro.config import ConfigError, check_config, format_errors, load_config, load_yaml

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
CONFIGS = sorted([REPO / "config/config.yaml", *(REPO / "config/examples").glob("*.yaml")])


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate(path, monkeypatch):
    monkeypatch.chdir(REPO)
    config, lines = load_config([path])
    assert check_config(config, SCHEMA, lines) == []
    for analysis in config["analyses"].values():
        assert (REPO / analysis["data"]).exists()


def minimal(**analysis):
    return {"analyses": {"il6": {"title": "IL-6", "data": "x.csv", **analysis}}}


def problems(config):
    return check_config(config, SCHEMA, sheets=False)


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
