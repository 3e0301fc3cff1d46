"""metarepro: reproduce and update meta-analyses; statistics that agree with R metafor.

>>> from metarepro import rma
>>> fit = rma([0.3, 0.1, 0.5], [0.04, 0.02, 0.05], method="REML", test="knha")
>>> round(fit.estimate, 4)
0.2303
"""

from .dependent import *  # noqa: F403  (rma_mv, robust, vcalc, aggregate, ...: see dependent.py)
from .effects import MEASURES
from .rma import RmaResult, rma, rma_batch
from .tau2 import METHODS, Control

__all__ = ["MEASURES", "METHODS", "Control", "RmaResult", "rma", "rma_batch"]
__version__ = "0.1.0"
