"""metarepro: reproduce and update meta-analyses; statistics that agree with R metafor.

>>> from metarepro import rma
>>> fit = rma([0.3, 0.1, 0.5], [0.04, 0.02, 0.05], method="REML", test="knha")
>>> round(fit.estimate, 4)
0.2303

The package's layers (each imports only from the ones above it): ``_core`` (private numerical core), ``stats``
(arrays in, fitted objects out), ``inputs`` (sheets and config), ``quality`` (row rules), ``pipeline`` (one
configured analysis in memory), ``present`` (figures and the report), ``jobs`` (file level: what the workflow's
rules call; no Snakemake import).
"""

from metarepro._core.lazy import lazy_exports

__all__ = ["MEASURES", "METHODS", "BlockV", "Control", "MVControl", "RmaGlmmResult", "RmaMhResult", "RmaMvResult",
           "RmaPetoResult", "RmaResult", "RobustResult", "aggregate", "anova", "confint", "escalc", "rma", "rma_batch",
           "rma_glmm", "rma_mh", "rma_mv", "rma_peto", "robust", "vcalc"]  # fmt: skip
__version__ = "0.1.0"

# Imported from their modules when first used (metarepro._core.lazy); tests/test_imports.py checks this table.
lazy_exports(__name__, {
    "MEASURES": "stats.effects",
    "escalc": "stats.effects",
    **dict.fromkeys(["RmaMhResult", "rma_mh"], "stats.mh"),
    **dict.fromkeys(["RmaPetoResult", "rma_peto"], "stats.peto"),
    "METHODS": "stats.tau2",
    "Control": "stats.tau2",
    "RmaResult": "stats.rma",
    "rma": "stats.rma",
    "rma_batch": "stats.rma",
    **dict.fromkeys(["BlockV", "MVControl", "RmaMvResult", "anova", "confint", "rma_mv"], "stats.mv"),
    **dict.fromkeys(["RobustResult", "robust"], "stats.robust"),
    **dict.fromkeys(["aggregate", "vcalc"], "stats.vcalc"),
    **dict.fromkeys(["RmaGlmmResult", "rma_glmm"], "stats.glmm"),
})  # fmt: skip
