# Copied from the project's shared benchmarks (shared/benchmarks/make_inputs.py), unchanged below this header: the
# inputs of the side-by-side timing (benchmarks/bench_vs_r.py).
"""Inputs for the side-by-side timings (run from the metarepro clone after one default pipeline run).

    python make_inputs.py WORK   # WORK: an output folder

Writes into WORK:
- r_data/<analysis>.csv  per default analysis, its included rows as group n/mean/SD that reproduce metarepro's
  yi and vi exactly under metafor's escalc (SMD: m2 = 0, sd = 1, m1 = yi / J; ROM and MD: sd from vi), with the
  sheet's year, sample, medication (subgroup and moderator columns), study_id (cluster of the multilevel one);
- spec_<N>.csv           the R script's list of analyses (N = 22, 100, 400: the defaults replicated as _rN);
- config_<N>.yaml        the same analyses for metarepro (default config entries, replicated, same sheet);
- spec_il6_smd.csv / config_il6_smd.yaml, spec_il6_core.csv / config_il6_core.yaml: one analysis (il6_smd with
  its subgroups and moderator; and the core only, no subgroups/moderators);
- synth_k<K>.csv, spec_k<K>.csv, config_k<K>.yaml: one core SMD analysis of K synthetic studies (group
  means/SDs), same sheet for both sides.
"""

import copy
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

work = Path(sys.argv[1]).resolve()
(work / "r_data").mkdir(parents=True, exist_ok=True)
config = yaml.safe_load(Path("config/config.yaml").read_text())
sheet = pd.read_csv("data/raw/cytokines_mdd.csv")
sheet["line"] = np.arange(2, len(sheet) + 2)


def cmicalc(m):  # metafor's exact small-sample correction J(m)
    return math.exp(math.lgamma(m / 2) - math.log(math.sqrt(m / 2)) - math.lgamma((m - 1) / 2))


specs = []
R_MEASURES = ("SMD", "MD", "ROM")  # what r_analyses.R loops over (the 22 cytokine analyses)
for name, analysis in config["analyses"].items():
    if analysis.get("data") != "data/raw/cytokines_mdd.csv" or analysis.get("measure", "SMD") not in R_MEASURES:
        print(f"make_inputs: {name} left out (the R loop covers the cytokine sheet's SMD/MD/ROM analyses)")
        continue
    eff = pd.read_csv(f"results/{name}/effects.csv")
    eff = eff[eff["included"]].copy()
    pooled = json.loads(Path(f"results/{name}/pooled.json").read_text())
    measure = pooled["measure"]
    n1, n2, yi, vi = (eff[c].to_numpy(float) for c in ("n_cases", "n_controls", "yi", "vi"))
    if measure == "SMD":
        j = np.array([cmicalc(a + b - 2) for a, b in zip(n1, n2)])
        m1, m2, sd1, sd2 = yi / j, np.zeros_like(yi), np.ones_like(yi), np.ones_like(yi)
    elif measure == "ROM":
        s = np.sqrt(vi / (1 / n1 + 1 / n2))
        m1, m2, sd1, sd2 = np.exp(yi), np.ones_like(yi), np.exp(yi) * s, s
    else:  # MD
        s = np.sqrt(vi / (1 / n1 + 1 / n2))
        m1, m2, sd1, sd2 = yi, np.zeros_like(yi), s, s
    extra = sheet.set_index("line").loc[eff["line"], ["year", "sample", "medication"]].reset_index(drop=True)
    out = pd.DataFrame({"study_id": eff["study_id"].to_numpy(), "study": eff["study"].to_numpy(),
                        "n1i": n1, "m1i": m1, "sd1i": sd1, "n2i": n2, "m2i": m2, "sd2i": sd2,
                        "yi_ref": yi, "vi_ref": vi})
    out = pd.concat([out, extra], axis=1)
    out.to_csv(work / "r_data" / f"{name}.csv", index=False)
    multilevel = "dependence" in analysis
    specs.append({"name": name, "data": f"r_data/{name}.csv", "measure": measure, "method": pooled["method"],
                  "test": "knha" if multilevel else pooled["test"],
                  "subgroups": ";".join(analysis.get("subgroups", [])),
                  "moderators": ";".join(analysis.get("moderators", [])),
                  "multilevel": int(multilevel), "robust": analysis.get("robust", ""),
                  "permutations": analysis.get("permutations", 1000) if analysis.get("moderators") else 0,
                  "estimate_ref": pooled["estimate"], "tau2_ref": pooled["tau2"] if not isinstance(pooled["tau2"], list) else pooled["tau2"][0]})
base = pd.DataFrame(specs)


def replicate(n):
    rows, cfg = [], copy.deepcopy(config)
    cfg["analyses"] = {}
    cfg["results"] = f"results_{n}"
    r = 0
    while len(rows) < n:
        for _, spec in base.iterrows():
            if len(rows) == n:
                break
            name = spec["name"] if r == 0 else f"{spec['name']}_r{r}"
            rows.append({**spec.to_dict(), "name": name})
            cfg["analyses"][name] = copy.deepcopy(config["analyses"][spec["name"]])
        r += 1
    return pd.DataFrame(rows), cfg


for n in (22, 100, 400):
    spec, cfg = replicate(n)
    spec.to_csv(work / f"spec_{n}.csv", index=False)
    (work / f"config_{n}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))

one = base[base["name"] == "il6_smd"]
one.to_csv(work / "spec_il6_smd.csv", index=False)
cfg = copy.deepcopy(config)
cfg["analyses"] = {"il6_smd": config["analyses"]["il6_smd"]}
cfg["results"] = "results_il6_smd"
(work / "config_il6_smd.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
core = one.assign(name="il6_core", subgroups="", moderators="", permutations=0)
core.to_csv(work / "spec_il6_core.csv", index=False)
cfg = copy.deepcopy(config)
a = {k: v for k, v in config["analyses"]["il6_smd"].items() if k not in ("subgroups", "moderators", "compare_with")}
cfg["analyses"] = {"il6_core": a}
cfg["results"] = "results_il6_core"
(work / "config_il6_core.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))

# k scaling: one core SMD analysis on a synthetic sheet of K studies (both sides read the same file)
rng = np.random.default_rng(1)
for k in (10, 100, 1000, 10000):
    n1, n2 = rng.integers(15, 200, k), rng.integers(15, 200, k)
    d = 0.4 + rng.normal(0, 0.3, k)
    m2 = rng.uniform(2, 5, k)
    sd = rng.uniform(0.8, 2.0, k)
    m1 = m2 + d * sd + rng.normal(0, 1, k) * sd * np.sqrt(1 / n1 + 1 / n2)
    synth = pd.DataFrame({"study_id": [f"s{i}" for i in range(k)], "study": [f"Study {i}" for i in range(k)],
                          "year": rng.integers(1990, 2025, k), "marker": "IL-6",
                          "n_cases": n1, "mean_cases": m1.round(4), "sd_cases": (sd * rng.uniform(0.9, 1.1, k)).round(4),
                          "n_controls": n2, "mean_controls": m2.round(4), "sd_controls": sd.round(4),
                          "sample": rng.choice(["serum", "plasma"], k), "medication": rng.choice(["free", "medicated"], k),
                          "verified": "yes"})
    synth.to_csv(work / f"synth_k{k}.csv", index=False)
    r_synth = synth.rename(columns={"n_cases": "n1i", "mean_cases": "m1i", "sd_cases": "sd1i", "n_controls": "n2i",
                                    "mean_controls": "m2i", "sd_controls": "sd2i"})
    r_synth.to_csv(work / "r_data" / f"synth_k{k}.csv", index=False)
    pd.DataFrame([{"name": f"k{k}", "data": f"r_data/synth_k{k}.csv", "measure": "SMD", "method": "REML",
                   "test": "knha", "subgroups": "", "moderators": "", "multilevel": 0, "robust": "",
                   "permutations": 0, "estimate_ref": np.nan, "tau2_ref": np.nan}]).to_csv(work / f"spec_k{k}.csv", index=False)
    cfg = {"defaults": config["defaults"], "results": f"results_k{k}",
           "analyses": {f"k{k}": {"title": f"synthetic k = {k}", "data": str(work / f'synth_k{k}.csv')}}}
    (work / f"config_k{k}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
print("written to", work)
