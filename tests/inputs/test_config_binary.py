"""Config keys of binary outcomes (measure OR ... PFT, fit, model, add, to, drop00): the combinations metafor refuses
are one-line errors naming the key, and a sheet without the count columns is named before any rule runs, with the
``columns`` mapping that would read metafor's names."""

import pytest
from conftest import REPO

from metarepro.inputs.config import check_config, load_config

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
LINDE = "data/raw/linde2005_st_johns_wort.csv"
MAPPED = {"study_id": "id", "events_cases": "ai", "n_cases": "n1i", "events_controls": "ci", "n_controls": "n2i"}


def problems(**analysis):
    config = {"analyses": {"a": {"title": "A", "data": LINDE, **analysis}}}
    return check_config(config, SCHEMA, sheets=False)


@pytest.mark.parametrize(("analysis", "expected"), [
    ({"measure": "RR", "fit": "rma.peto"},
     "config (analyses → a → fit): rma.peto pools OR, PETO (metafor), not RR; use fit: rma for RR, or a measure "
     "rma.peto takes"),
    ({"measure": "PR", "fit": "rma.mh"}, "config (analyses → a → fit): rma.mh pools OR, RR, RD (metafor), not PR;"),
    ({"measure": "RD", "fit": "rma.glmm"}, "config (analyses → a → fit): rma.glmm pools OR, PLO (metafor), not RD;"),
    ({"measure": "OR", "model": "UM.RS"}, "config (analyses → a → model): model is the type of rma.glmm's model"),
    ({"measure": "OR", "fit": "rma.mh", "method": "DL"},
     "config (analyses → a → method): rma.mh is an equal-effects model without method (metafor)"),
    ({"measure": "OR", "fit": "rma.glmm", "method": "REML"},
     "config (analyses → a → method): rma.glmm estimates by ML (or EE, equal effects), not REML"),
    ({"measure": "OR", "add": [0.5, 0]}, "config (analyses → a → add): a pair of add values"),
    ({"measure": "PLO", "drop00": True}, "config (analyses → a → drop00): drop00 applies to 2x2 tables"),
    ({"measure": "SMD", "to": "all"}, "config (analyses → a → to): to is a zero-cell option for counts"),
    ({"measure": "PLO", "vtype": "UB"}, "config (analyses → a → vtype): vtype UB does not apply to PLO; metafor takes "
                                        "LS, AV"),
    ({"measure": "OR", "to": "only"}, "config (analyses → a → to): 'only' is not one of only0, all, if0all, none (or a "
                                      "pair of them) (did you mean 'only0'?)"),
])  # fmt: skip
def test_combinations_metafor_refuses_are_one_line_errors(analysis, expected):
    found = problems(**analysis)
    assert len(found) == 1 and found[0].startswith(expected), found


@pytest.mark.parametrize("analysis", [
    {"measure": "OR", "fit": "rma.mh", "add": [0.5, 0], "to": ["only0", "none"], "drop00": [True, False]},
    {"measure": "PETO", "fit": "rma.peto"}, {"measure": "OR", "fit": "rma.glmm", "model": "CM.EL", "method": "EE"},
    {"measure": "PLO", "fit": "rma.glmm"}, {"measure": "PFT", "add": 0, "to": "all"}, {"measure": "RD", "vtype": "AV"},
])  # fmt: skip
def test_combinations_metafor_allows_pass(analysis):
    assert problems(**analysis) == []


def test_missing_count_columns_are_named_with_the_mapping_of_metafors_names(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    path = tmp_path / "c.yaml"
    path.write_text(f"analyses:\n  a:\n    title: A\n    data: {LINDE}\n    measure: OR\n"
                    "    columns: {study_id: id}\n")
    config, lines = load_config([path])
    assert check_config(config, SCHEMA, lines) == [
        f"{path}, line 5 (analyses → a → measure): {LINDE} has no column events_cases (with nonevents_cases or "
        "n_cases); events_controls (with nonevents_controls or n_controls) (OR needs a 2x2 table per row); map them: "
        "columns: {n: ni, events_cases: ai, n_cases: n1i, events_controls: ci, n_controls: n2i}"]
    config = {"analyses": {"a": {"title": "A", "data": LINDE, "measure": "OR", "columns": MAPPED}}}
    assert check_config(config, SCHEMA) == []
