"""metarepro: reproduce and update meta-analyses; statistics that agree with R metafor.

>>> from metarepro import rma
>>> fit = rma([0.3, 0.1, 0.5], [0.04, 0.02, 0.05], method="REML", test="knha")
>>> round(fit.estimate, 4)
0.2303
"""

from ._lazy import lazy_exports

__all__ = ["MEASURES", "METHODS", "Control", "RmaResult", "rma", "rma_batch"]
__version__ = "0.1.0"

# Imported from their modules when first used (metarepro._lazy); tests/test_imports.py checks this table.
lazy_exports(__name__, {
    "MEASURES": "effects",
    "METHODS": "tau2",
    "Control": "tau2",
    "RmaResult": "rma",
    "rma": "rma",
    "rma_batch": "rma",
    **dict.fromkeys(["BlockV", "MVControl", "RmaMvResult", "RobustResult", "aggregate", "anova", "confint",
                     "rma_mv", "robust", "vcalc"], "dependent"),
})  # fmt: skip
