"""The hard-case corpus at scale (run on demand; not a test): counts of hangs, false "converged" and capped bounds.

    .venv/bin/python benchmarks/hard_case_sweep.py [--per-kind 100]

Every case of tests/hard_cases.py × REML, ML, PM, EB, DL with test="knha": a fit still running after 20 s is a
hang; a fit that says converged is checked against the 50-digit reference (its τ² and both Q-profile bounds
solve their equations, as in tests/stats/test_hard_cases.py); a bound that equals metafor's default search limit
max(100, 10 τ²) without being flagged capped, or is flagged capped, is counted.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from hard_cases import corpus, q_mp, solves  # noqa: E402

from metarepro import rma  # noqa: E402

EPS = np.finfo(float).eps


class Hang(Exception):
    pass


def _alarm(*_):
    raise Hang


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=100)
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, _alarm)
    counts = dict.fromkeys(("fits", "hang", "not converged", "false converged", "capped", "at metafor's cap"), 0)
    for kind, y, v in corpus(args.per_kind):
        c_low, c_high = stats.chi2.ppf(0.025, y.size - 1), stats.chi2.ppf(0.975, y.size - 1)
        for method in ("REML", "ML", "PM", "EB", "DL"):
            counts["fits"] += 1
            signal.alarm(20)
            try:
                fit = rma(y, v, method=method, test="knha")
            except Hang:
                counts["hang"] += 1
                continue
            finally:
                signal.alarm(0)
            if not fit.converged:
                counts["not converged"] += 1
                continue
            floor = EPS * v.min()
            if method != "DL" and not solves("PM" if method == "EB" else method, y, v, fit.tau2, 1e-9, floor=floor)[0]:
                counts["false converged"] += 1
                print(kind, method, "tau2", fit.tau2, y.tolist(), v.tolist())
            for side, target in (("high", c_low), ("low", c_high)):
                bound = float(getattr(fit, f"tau2_ci_{side}"))
                if getattr(fit, f"tau2_ci_{side}_capped", False):
                    counts["capped"] += 1
                    continue
                if bound > 0 and bound == max(100, 10 * fit.tau2):
                    counts["at metafor's cap"] += 1
                    continue
                ok = q_mp(y, v, 0) <= target * (1 + 1e-12) if bound == 0 else solves(
                    "PM", y, v, bound, 1e-9, target=target, floor=floor)[0]  # fmt: skip
                if not ok:
                    counts["false converged"] += 1
                    print(kind, method, side, bound, y.tolist(), v.tolist())
    print(counts)


if __name__ == "__main__":
    main()
