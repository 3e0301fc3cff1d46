"""pooled.json as a typed record (metarepro.pipeline.record.PooledRecord, issue 18): the same bytes as the dict it
replaces (tests/jobs/test_dependence.py::test_analyses_without_dependence_are_unchanged compares il6_smd's pooled.json
with the committed baseline), every key where the dict had it and nowhere else, and read back into the same record.

The analyses are the default config's il6_rom (ratios, a fit without flagged rows), il6_smd_multilevel (rma.mv: a t
test's ``df`` and the dependence record) and the multivariate analysis of tests/reference/export_dependence_rows.py
(rma.mv with a z test: ``df`` written as null).
"""

import json

import pytest
import yaml
from conftest import REPO

from metarepro.jobs import run_analysis
from metarepro.jobs.files import read_json, write_json
from metarepro.pipeline.record import ABSENT, PooledRecord

CONFIG = yaml.safe_load((REPO / "config/config.yaml").read_text())
MULTIVARIATE = {"title": "IL-6, TNF-a, CRP jointly", "data": "data/raw/cytokines_mdd.csv",
                "where": {"marker": ["IL-6", "TNF-a", "CRP"]},
                "dependence": {"model": "multivariate", "inner": "marker", "struct": "HCS", "rho": 0.5}}  # fmt: skip
FIT = ["k", "measure", "preset", "vtype", "unit", "method", "test", "level", "estimate", "se", "zval", "pval", "ci_low",
       "ci_high", "tau2", "tau2_se", "tau2_ci_low", "tau2_ci_high", "tau", "i2", "i2_ci_low", "i2_ci_high", "h2", "q",
       "q_df", "q_p", "pi_low", "pi_high", "converged", "iterations", "tau2_ci_low_capped", "tau2_ci_high_capped",
       "warnings"]  # fmt: skip
ROWS = ["k_input", "k_excluded", "n_cases", "n_controls", "study_years"]


def record_of(analysis, defaults):
    return run_analysis(REPO / analysis["data"], analysis, defaults).pooled


@pytest.fixture(scope="module")
def records():
    analyses = CONFIG["analyses"]
    return {"il6_rom": record_of(analyses["il6_rom"], CONFIG["defaults"]),
            "il6_smd_multilevel": record_of(analyses["il6_smd_multilevel"], CONFIG["defaults"]),
            "multivariate": record_of(MULTIVARIATE, {**CONFIG["defaults"], "test": "z"})}  # fmt: skip


def test_each_key_is_written_where_the_dict_had_it(records):
    back = [f"{name}_ratio" for name in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high")]
    rom = records["il6_rom"]
    assert list(rom) == [*FIT, *back, *ROWS, "without_flagged"]
    assert list(rom.without_flagged) == [*FIT, *back, "excluded_lines"]
    multilevel = records["il6_smd_multilevel"]
    with_df = [*FIT[:14], "df", *FIT[14:]]  # rma.mv's t test df, after the CI as metafor prints it
    assert list(multilevel)[: len(with_df) + 1] == [*with_df, "dependence"] and multilevel.df == 22 - 1  # k − p
    assert records["multivariate"]["df"] is None and "df" not in rom  # z test: null; not an rma.mv fit: absent


def test_the_record_is_written_and_read_back_unchanged(records, tmp_path):
    for name, record in records.items():
        write_json(record.to_dict(), tmp_path / f"{name}.json")
        back = PooledRecord.from_dict(read_json(tmp_path / f"{name}.json"))
        assert isinstance(back.without_flagged, PooledRecord | type(ABSENT))
        write_json(back.to_dict(), tmp_path / f"{name}_again.json")
        assert (tmp_path / f"{name}_again.json").read_bytes() == (tmp_path / f"{name}.json").read_bytes(), name
        assert json.loads((tmp_path / f"{name}.json").read_text()) == back.to_dict()


def test_absent_is_not_null():
    """Every row flagged: the fit without them is only k = 0 and the lines (no estimate key, not a null one)."""
    nothing_left = PooledRecord(k=0, excluded_lines=[3, 7])
    assert nothing_left.to_dict() == {"k": 0, "excluded_lines": [3, 7]}
    assert "estimate" not in nothing_left and nothing_left.get("estimate", "default") == "default"
    assert nothing_left.estimate is ABSENT and not nothing_left.estimate
    with pytest.raises(KeyError):
        nothing_left["estimate"]  # noqa: B018
    assert PooledRecord(k=1, df=None).to_dict() == {"k": 1, "df": None}


def test_a_key_that_is_no_field_is_an_error():
    with pytest.raises(TypeError, match="estimat"):
        PooledRecord.from_dict({"k": 3, "estimat": 0.2})
