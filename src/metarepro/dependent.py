"""Dependent effect sizes: multilevel/multivariate models, sampling covariances, cluster-robust inference.

>>> from metarepro import rma_mv, robust, vcalc, aggregate
"""

from .rma_mv import BlockV, MVControl, RmaMvResult, anova, confint, rma_mv
from .robust import RobustResult, robust
from .vcalc import aggregate, vcalc

__all__ = ["BlockV", "MVControl", "RmaMvResult", "RobustResult", "aggregate", "anova", "confint", "rma_mv", "robust",
           "vcalc"]  # fmt: skip
