"""metarepro: reproduce and update meta-analyses; statistics that agree with R metafor.

>>> from metarepro import rma
>>> fit = rma([0.3, 0.1, 0.5], [0.04, 0.02, 0.05], method="REML", test="knha")
>>> round(fit.estimate, 4)
0.2303
"""

import sys
from importlib import import_module
from types import ModuleType

# The public names, each imported from its module when first used (PEP 562): the Snakefile imports
# metarepro.config while Snakemake parses the workflow, on every run, and that should not load numpy and
# scipy for an rma it never calls. tests/test_imports.py checks this table against the modules' own names.
_EXPORTS = {
    "MEASURES": "effects",
    "METHODS": "tau2",
    "Control": "tau2",
    "RmaResult": "rma",
    "rma": "rma",
    "rma_batch": "rma",
    **dict.fromkeys(["BlockV", "MVControl", "RmaMvResult", "RobustResult", "aggregate", "anova", "confint",
                     "rma_mv", "robust", "vcalc"], "dependent"),  # fmt: skip
}
__all__ = ["MEASURES", "METHODS", "Control", "RmaResult", "rma", "rma_batch"]
__version__ = "0.1.0"


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'metarepro' has no attribute {name!r}")
    value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later lookups are plain module attributes
    return value


def __dir__():
    return sorted({*globals(), *_EXPORTS})


class _Package(ModuleType):
    def __setattr__(self, name, value):
        # Importing the submodule metarepro.rma (or .rma_mv) binds the package's name 'rma' to that module;
        # the public name is the function (as with an eager `from .rma import rma`), left to __getattr__.
        if not (isinstance(value, ModuleType) and name in _EXPORTS):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
