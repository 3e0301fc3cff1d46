"""The config schema: every shipped config validates; typos fail with the key named."""

from pathlib import Path

import pytest
import yaml
from conftest import REPO
from snakemake.utils import validate

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
CONFIGS = sorted([REPO / "config/config.yaml", *(REPO / "config/examples").glob("*.yaml")])


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    config = yaml.safe_load(Path(path).read_text())
    validate(config, str(SCHEMA))
    for analysis in config["analyses"].values():
        assert (REPO / analysis["data"]).exists()


def minimal(**analysis):
    return {"analyses": {"il6": {"title": "IL-6", "data": "x.csv", **analysis}}}


def test_defaults_are_filled_in():
    config = minimal()
    validate(config, str(SCHEMA))
    assert config["defaults"] == {
        "measure": "SMD", "method": "REML", "test": "z", "level": 95, "vtype": "LS",
        "preset": "metafor", "exclude_converted": False,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("config", "named"),
    [
        (minimal(methd="DL"), "methd"),
        (minimal(method="DerSimonian"), "DerSimonian"),
        (minimal(where={"marker": {"$ne": "x"}}), "where"),
        ({"analyses": {"bad name": {"title": "t", "data": "x.csv"}}}, "bad name"),
        ({**minimal(), "defautls": {}}, "defautls"),
    ],
)
def test_typos_fail_with_the_key_named(config, named):
    with pytest.raises(Exception) as err:
        validate(config, str(SCHEMA))
    assert named in str(err.value)
