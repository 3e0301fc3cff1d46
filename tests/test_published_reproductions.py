"""Published pooled results recomputed from their own per-study numbers, checked at the published rounding.

Passos IC et al. 2015 (Lancet Psychiatry 2:1002-1012), IL-6 in PTSD: REML random effects, SMD 0.88,
p = 0.0003 (abstract); per-study SMDs and 95% CIs from its Figure 3a (data/raw/passos2015_ptsd_il6.csv).
"""

import yaml
from conftest import REPO

from metarepro.pipeline import run_analysis
from metarepro.reproduction import read_published


def test_passos2015_il6_at_published_rounding():
    config = yaml.safe_load((REPO / "config/examples/passos2015_ptsd_il6.yaml").read_text())
    analysis = config["analyses"]["passos2015_il6"]
    result = run_analysis(REPO / analysis["data"], analysis, config["defaults"])
    published = read_published(REPO / config["published"]).loc["passos2015_il6"]
    assert result.pooled["k"] == 15
    assert round(result.pooled["estimate"], 2) == published["estimate"] == 0.88
    assert round(result.pooled["pval"], 4) == published["pval"] == 0.0003
