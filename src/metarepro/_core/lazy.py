"""Public names of a package imported from their modules when first used (PEP 562).

A pipeline job is a fresh interpreter that imports only what it uses: the Snakefile imports metarepro.inputs.config
while Snakemake parses the workflow, the report job metarepro.jobs.run, and neither should load numpy, scipy
or the statistics for names it never touches.
"""

from __future__ import annotations

import sys
from importlib import import_module


def lazy_exports(package: str, exports: dict[str, str]) -> None:
    """Give ``package`` (its ``__name__``) the names of ``exports`` (name -> submodule), each imported when first
    used; call it at the end of the package's ``__init__``."""
    module = sys.modules[package]

    def __getattr__(name):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f".{exports[name]}", package), name)
        setattr(module, name, value)  # later lookups are plain module attributes
        return value

    def __dir__():
        return sorted({*vars(module), *exports})

    module._EXPORTS = exports
    module.__getattr__ = __getattr__
    module.__dir__ = __dir__
