"""Write the rows that the pipeline pools in its dependent analyses to CSV fixtures for
generate_dependence_reference.R. Run from the repository root:

    .venv/bin/python tests/reference/export_dependence_rows.py

The fixtures are the pipeline's own effects (yi, vi to 17 digits) with the grouping columns; test_dependence.py checks
that the pipeline still produces exactly these rows, so R fits what the pipeline fits.
"""

from pathlib import Path

import yaml

from metarepro.jobs import run_analysis

REPO = Path(__file__).resolve().parents[2]
SHEET = "data/raw/cytokines_mdd.csv"
# the default config's dependent analysis, and a multivariate one over three markers (tests only)
MULTIVARIATE = {"title": "IL-6, TNF-a, CRP jointly", "data": SHEET, "where": {"marker": ["IL-6", "TNF-a", "CRP"]},
                "dependence": {"model": "multivariate", "inner": "marker", "struct": "HCS", "rho": 0.5},
                "robust": "CR1"}  # fmt: skip
COLUMNS = ["line", "study_id", "marker", "yi", "vi", "n_cases", "n_controls"]


def analyses():
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    return {"il6_smd_multilevel": (config["analyses"]["il6_smd_multilevel"], config["defaults"]),
            "multivariate_il6_tnf_crp": (MULTIVARIATE, {**config["defaults"], "test": "z"})}  # fmt: skip


def rows(name):
    analysis, defaults = analyses()[name]
    return pooled_rows(run_analysis(REPO / SHEET, analysis, defaults).effects, analysis)


def pooled_rows(effects, analysis):
    """The rows of an analysis's effects that its model pools, with the fixture's columns."""
    used = effects[effects["included"]]
    return used.assign(marker=used["marker"] if "marker" in used else analysis["where"]["marker"])[COLUMNS]


if __name__ == "__main__":
    for name in analyses():
        rows(name).to_csv(REPO / "tests" / "data" / f"dependence_{name}.csv", index=False, float_format="%.17g")
