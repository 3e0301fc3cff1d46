"""``rma_mv()``: argument checks, then model, solver and result."""

from __future__ import annotations

import numpy as np

from metarepro.stats.mv.model import _build
from metarepro.stats.mv.results import RmaMvResult, _result
from metarepro.stats.mv.solver import MVControl, _solve, _start
from metarepro.stats.mv.structures import BlockV

METHODS = ("REML", "ML")
TESTS = ("z", "t")
DFS = ("residual", "contain")

def rma_mv(
    yi,
    V,
    X=None,
    *,
    nested=None,
    inner=None,
    outer=None,
    struct="CS",
    method="REML",
    test="z",
    dfs="residual",
    level=95,
    btt=None,
    X_names=None,
    control: MVControl | None = None,
    start=None,
) -> RmaMvResult:
    """Fit metafor's ``rma.mv``.

    ``V``: 1-D sampling variances or a :class:`BlockV` (e.g. from :func:`metarepro.stats.vcalc.vcalc`).
    ``X``: (k, p) design (default: intercept only). ``nested``: list of grouping columns, outermost first.
    ``inner``/``outer``/``struct``: the ``~ inner | outer`` term, ``struct`` one of ``ID``, ``DIAG``, ``CS``
    (default, as metafor), ``HCS``, ``UN``, ``AR`` (levels ordered as R's factor() orders them). ``btt``:
    0-based coefficients for QM (default: all but an intercept column). ``start``: θ to start from (log
    variances, Fisher-z correlations; an entry of -inf holds that variance at 0, as metafor's
    ``sigma2 = c(0, NA)``).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if test not in TESTS:
        raise ValueError(f"test must be one of {', '.join(TESTS)}, not {test!r}")
    if dfs not in DFS:
        raise ValueError(f"dfs must be one of {', '.join(DFS)}, not {dfs!r}")
    if not 0 < level < 100:
        raise ValueError(f"level is a percentage between 0 and 100, not {level!r}")
    control = control or MVControl()
    yi = np.asarray(yi, dtype=float)
    k = yi.size
    if yi.ndim != 1 or k < 2:
        raise ValueError("rma_mv() needs a 1-D yi with at least 2 effects")
    if not np.all(np.isfinite(yi)):
        raise ValueError("yi must be finite; drop or exclude incomplete rows first")
    X = np.ones((k, 1)) if X is None else np.asarray(X, dtype=float).reshape(k, -1)
    p = X.shape[1]
    if X_names is None:
        X_names = ["intrcpt"] if p == 1 and np.all(X == 1) else [f"x{j}" for j in range(p)]
    if np.linalg.matrix_rank(X) < p:
        raise ValueError("the design matrix X is not of full column rank")
    model, sigma_codes = _build(yi, V, X, nested, inner, outer, struct)
    vdiag = V.diag() if isinstance(V, BlockV) else np.asarray(V, dtype=float)
    theta0 = _start(model, yi, X, vdiag) if start is None else np.asarray(start, dtype=float)
    fixed = None
    if start is not None and not np.all(np.isfinite(theta0)):
        fixed = ~np.isfinite(theta0)
    fit = _solve(model, method, theta0, control, fixed)
    return _result(model, fit, sigma_codes, yi, X, X_names, method, test, dfs, level, btt)
