"""Array plumbing shared by the estimators: a batch of intercept-only meta-analyses, and the one root finder.

A batch is ``y`` and ``v`` of shape (B, K): B meta-analyses padded to the largest k with NaN. Every
quantity is a weighted sum along the last axis, so nothing ever forms a k×k matrix. For the
intercept-only model with weights w (S = Σw, μ = Σwy/S, r = y − μ):

* P = W − w wᵀ/S, so P y = w r, yᵀPy = Σw r², yᵀP²y = Σw² r²
* tr P = ΣPᵢᵢ, Pᵢᵢ = wᵢ(S − wᵢ)/S; tr P² = ΣPᵢᵢ² + Σᵢwᵢ²(S2 − wᵢ²)/S²  (S2 = Σw²)
* yᵀP³y = (Py)ᵀP(Py) = Σw(wr − m)², m = Σw²r/S (the centred form; the textbook Σw³r² − (Σw²r)²/S cancels)

These forms stay accurate when one study's weight dwarfs the rest (vᵢ = 1e-12 beside 1e6), where
S − S2/S would cancel to noise or to 0: for the study of largest weight, S − wᵢ and S2 − wᵢ² are summed from
the other studies instead of subtracted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, update_wrapper

import numpy as np

EPS = np.finfo(float).eps

# The loops below (the kernels) are written once and run two ways. Compiled by numba (cached on disk) they are
# ~200x faster, but importing numba and loading the cached machine code costs a process 0.3-0.8 s: more than
# an ordinary analysis spends in them as plain Python (~0.07 s for 50 studies, every sensitivity analysis
# included). So a process runs them as Python until it has done PYTHON_BUDGET units of work (a unit is one
# study-row cell, or one row of a Newton step: 2-5 us each as Python), about what loading numba costs, then
# compiles each kernel it calls; a call of more than PYTHON_CALL units (a large batch, which is usually one
# of many) compiles at once. Both ways do the same IEEE operations in the same order (numba without
# fastmath; d * d, never d ** 2, which NumPy scalars compute with pow): the same bits, tested in
# tests/core/test_kernels.py.
PYTHON_BUDGET = 200_000
PYTHON_CALL = 10_000
_spent = 0


class _Kernel:
    def __init__(self, py_func, work):
        update_wrapper(self, py_func)
        self.py_func, self.work, self.compiled = py_func, work, None

    def __call__(self, *args):
        global _spent
        if self.compiled is None:
            work = self.work(*args)
            if work <= PYTHON_CALL and _spent + work <= PYTHON_BUDGET:
                _spent += work
                return self.py_func(*args)
            from numba import njit

            self.compiled = njit(cache=True, nogil=True)(self.py_func)
        return self.compiled(*args)


def kernel(work):
    """A loop run as Python while the process's budget lasts, then compiled; ``work(*args)`` the size of a call."""
    return lambda py_func: _Kernel(py_func, work)


@dataclass(frozen=True)
class Batch:
    """Padded effect sizes: ``y``/``v`` hold finite values (from_arrays: 0/1) where ``mask`` is False, so sums
    stay finite; every computation gives those studies weight 0.

    The τ² estimators' view of the intercept-only model, X = 1 (the same methods as
    :class:`metarepro._core.wls.Design`, the design-matrix case): ``k``, ``p`` = 1, ``at(tau2, rows, level)`` (the
    sums of :class:`Weighted`), ``vmin``/``vmax``, ``sj_start``, ``unweighted``, ``v_traces`` and ``profile``.
    """

    y: np.ndarray
    v: np.ndarray
    mask: np.ndarray
    k: np.ndarray  # number of studies per analysis, shape (B,)
    p = 1  # one coefficient, the intercept

    @classmethod
    def from_arrays(cls, yi, vi):
        yi = np.atleast_2d(np.asarray(yi, dtype=float))
        vi = np.atleast_2d(np.asarray(vi, dtype=float))
        if yi.shape != vi.shape:
            raise ValueError(f"yi and vi differ in shape: {yi.shape} vs {vi.shape}")
        y, v = np.empty(yi.shape), np.empty(yi.shape)
        mask = np.empty(yi.shape, dtype=bool)
        k = np.empty(yi.shape[0], dtype=np.int64)
        if not _clean(yi, vi, y, v, mask, k):
            raise ValueError("every sampling variance vi must be > 0")
        return cls(y, v, mask, k)

    @classmethod
    def of_checked(cls, yi, vi):
        """The batch of (B, K) arrays ``yi``/``vi`` that the caller has checked (finite, vi > 0, no padding): the
        arrays themselves, as :meth:`from_arrays` would copy them (trim and fill fits 10⁶ studies 50 times)."""
        return cls(yi, vi, np.ones(yi.shape, dtype=bool), np.full(yi.shape[0], yi.shape[1], dtype=np.int64))

    @cached_property
    def padded(self):
        return not self.mask.all()

    def subset(self, rows):
        return Batch(self.y[rows], self.v[rows], self.mask[rows], self.k[rows])

    @cached_property
    def _scales(self):
        """min v, max v, mean v and Σ(y − ȳ)² (with a refined mean) per row, computed once."""
        out = np.empty((4, self.k.size))
        top = np.zeros(self.k.size, dtype=np.int64)
        _row_scales(self.y, self.v, self.mask, out, top)
        return (*out, top)

    def vmin(self):
        return self._scales[0]

    def vmax(self):
        return self._scales[1]

    def vmean(self):
        return self._scales[2]

    def centred_ss(self):
        return self._scales[3]

    def top(self):
        """Per row, the study of smallest v: of largest weight whatever τ²."""
        return self._scales[4]

    def sj_start(self):
        """Σ(y − ȳ)²/k: SJ's τ₀² and the data's scale of a τ² search."""
        return self.centred_ss() / self.k

    def at(self, tau2, rows=None, level=1):
        """The sums of :class:`Weighted` at τ² = ``tau2`` for all rows (or the rows ``rows``)."""
        return Weighted.of(self, tau2, rows, level)

    @cached_property
    def unweighted(self):
        """The unweighted fit, P₀ = I − 11ᵀ/k, in closed form (see :class:`_UnweightedMean`)."""
        return _UnweightedMean(self)

    def v_traces(self, wt):
        """(tr(PVPV), tr(PVP)) for the intercept-only P of the sums ``wt`` (of all rows)."""
        w, v, s = wt.w, self.v * self.mask, wt.s
        sw2v = (w**2 * v).sum(axis=-1)
        tr_pv2 = (w**2 * v**2).sum(axis=-1) - 2 * (w**3 * v**2).sum(axis=-1) / s + sw2v**2 / s**2
        tr_pvp = sw2v - 2 * (w**3 * v).sum(axis=-1) / s + wt.s2 * sw2v / s**2
        return tr_pv2, tr_pvp

    def profile(self, grid, rows, reml):
        """The log-likelihood up to a constant per row at the τ² values ``grid`` (see :func:`loglik_profile`)."""
        return -0.5 * loglik_profile(self, grid, rows, reml)


class _UnweightedMean:
    """The unweighted fit of the intercept-only model in closed form (the quantities of
    :class:`metarepro._core.wls.Unweighted`): yᵀP₀y = Σ(y − ȳ)², tr(P₀V)/(k − 1) = mean v,
    tr(P₀V) = Σv(1 − 1/k), tr(P₀VP₀V) = Σv² − 2Σv²/k + (Σv)²/k², log|XᵀX| = log k."""

    def __init__(self, batch):
        self.batch = batch

    @property
    def rss(self):
        return self.batch.centred_ss()

    @property
    def v_mean(self):
        return self.batch.vmean()

    @cached_property
    def _sums(self):
        v, m = self.batch.v, self.batch.mask
        return v.sum(axis=-1, where=m), (v**2).sum(axis=-1, where=m)

    @property
    def tr_pv(self):
        sv, k = self._sums[0], self.batch.k
        return sv * (1 - 1 / k)

    @property
    def tr_pvpv(self):
        (sv, sv2), k = self._sums, self.batch.k
        return sv2 - 2 * sv2 / k + sv**2 / k**2

    @property
    def log_det_xtx(self):
        return np.log(self.batch.k)


@kernel(lambda yi, *_: yi.size)
def _clean(yi, vi, y, v, mask, k):
    """Batch.from_arrays in one pass: a study is used if yi and vi are finite; padding gets y = 0, v = 1.
    Returns False if a used vi is ≤ 0."""
    for b in range(yi.shape[0]):
        k[b] = 0
        for i in range(yi.shape[1]):
            used = np.isfinite(yi[b, i]) and np.isfinite(vi[b, i])
            mask[b, i] = used
            y[b, i] = yi[b, i] if used else 0.0
            v[b, i] = vi[b, i] if used else 1.0
            if used:
                k[b] += 1
                if vi[b, i] <= 0:
                    return False
    return True


@kernel(lambda v, *_: v.size)
def _percent_weights(v, mask, tau2, out):
    """out = 100·wᵢ/Σw with w = 1/(v + τ²), NaN on padding."""
    for b in range(v.shape[0]):
        s = 0.0
        for i in range(v.shape[1]):
            if mask[b, i]:
                out[b, i] = 1.0 / (v[b, i] + tau2[b])
                s += out[b, i]
            else:
                out[b, i] = np.nan
        for i in range(v.shape[1]):
            out[b, i] = 100 * out[b, i] / s


def percent_weights(batch, tau2):
    """The weights of the fits in percent (metafor's ``weights(res)``), NaN on padding."""
    out = np.empty(batch.v.shape)
    _percent_weights(batch.v, batch.mask, np.ascontiguousarray(tau2, dtype=float), out)
    return out


@kernel(lambda y, *_: y.size)
def _row_scales(y, v, mask, out, top):
    """out[:, b] = (min v, max v, mean v, Σ(y − ȳ)²) of row b, ȳ refined by a second pass; top[b] the index
    of the smallest v (the largest weight 1/(v + τ²) at every τ² ≥ 0)."""
    for b in range(y.shape[0]):
        k, sy, sv, vmin, vmax = 0, 0.0, 0.0, np.inf, 0.0
        for i in range(y.shape[1]):
            if mask[b, i]:
                k += 1
                sy += y[b, i]
                sv += v[b, i]
                if v[b, i] < vmin:
                    vmin = v[b, i]
                    top[b] = i
                vmax = max(vmax, v[b, i])
        ybar = sy / k
        sd = 0.0
        for i in range(y.shape[1]):
            if mask[b, i]:
                sd += y[b, i] - ybar
        ybar += sd / k
        ss = 0.0
        for i in range(y.shape[1]):
            if mask[b, i]:
                d = y[b, i] - ybar
                ss += d * d
        out[0, b], out[1, b], out[2, b], out[3, b] = vmin, vmax, sv / k, ss


def weights(batch, tau2):
    """Random-effects weights 1/(v + τ²), zero on padding."""
    w = 1 / (batch.v + np.asarray(tau2, dtype=float)[..., None])
    return w * batch.mask if batch.padded else w


@kernel(lambda y, v, mask, top_of, rows, *_: rows.size * y.shape[1])
def _weighted_sums(y, v, mask, top_of, rows, tau2, level, out):
    """One fused pass per row (two sweeps over its studies) for :class:`Weighted`; see the module docstring.

    out[j] = (S, S2, μ, Q, yᵀP²y, yᵀP³y, tr P, tr P², Σlog(v + τ²)) for row rows[j] at τ² = tau2[j]; with
    ``level`` 0 only the first five (what Q-profile steps need), 1 all but the logs, 2 all. The residuals
    are taken from the study of largest weight (y_ref, the smallest v: ``top_of``), and the sums without that
    study are summed from the others, not by subtraction. yᵀP³y = Σw(wr − m)² with m = Σw²r/S =
    (Σw²d − δ·S2)/S from the first sweep: an error in m changes Σw(wr − m)² only by S·(Δm)² (m is the
    weighted mean of wr).
    """
    n_cols = y.shape[1]
    w = np.empty(n_cols)
    for j in range(rows.size):
        b = rows[j]
        t = tau2[j]
        s = 0.0
        s2 = 0.0
        top = top_of[b]
        ref = y[b, top]
        s_others = 0.0
        s2_others = 0.0
        swd = 0.0
        sw2d = 0.0
        for i in range(n_cols):
            wi = 1.0 / (v[b, i] + t) if mask[b, i] else 0.0
            w[i] = wi
            s += wi
            s2 += wi * wi
            wd = wi * (y[b, i] - ref)
            swd += wd
            sw2d += wi * wd
            if i != top:
                s_others += wi
                s2_others += wi * wi
        delta = swd / s
        m = (sw2d - delta * s2) / s
        q = 0.0
        ypy2 = 0.0
        tr_p = 0.0
        diag2 = 0.0
        off2 = 0.0
        ypy3 = 0.0
        log_det = 0.0
        product = 1.0  # Σ log(v + τ²) = −log Πw, one log per run of products (logs cost 5× the rest)
        for i in range(n_cols):
            wi = w[i]
            r = (y[b, i] - ref) - delta
            wr = wi * r
            q += wr * r
            ypy2 += wr * wr
            if level == 0:
                continue
            pii = wi * (s_others if i == top else s - wi) / s  # P_ii = wᵢ(1 − wᵢ/S)
            tr_p += pii
            diag2 += pii * pii
            off2 += wi * wi * (s2_others if i == top else s2 - wi * wi)
            u = wr - m
            ypy3 += wi * u * u
            if level == 2 and wi > 0:
                product *= wi
                if not 1e-150 < product < 1e150:
                    log_det -= np.log(product)
                    product = 1.0
        out[j, 0] = s
        out[j, 1] = s2
        out[j, 2] = ref + delta
        out[j, 3] = q
        out[j, 4] = ypy2
        if level > 0:
            out[j, 5] = ypy3
            out[j, 6] = tr_p
            out[j, 7] = diag2 + off2 / (s * s)
        if level == 2:
            out[j, 8] = log_det - np.log(product)


def _profile_work(y, v, mask, top_of, rows, grid, reml, by_column, out):
    cells = rows.size * grid.shape[1]
    if by_column:  # per study column ~10 NumPy calls over all cells (~20 us + 15 ns a cell), then logs a cell
        return y.shape[1] * (6 + cells // 200) + cells
    return cells * y.shape[1]


@kernel(_profile_work)
def _loglik_profile(y, v, mask, top_of, rows, grid, reml, by_column, out):
    """out[j, g] = −2 × the (restricted) log-likelihood without its constant, of row rows[j] at τ² = grid[j, g]:
    Σlog(v + τ²) + Q, plus log S for REML (see tau2.loglik). A lean pass for the global scan of the likelihood:
    Q = Σwd² − Σwd·(Σwd/S) with d = y − y_ref (the study of largest weight, as in :func:`_weighted_sums`), one
    sweep, and Σlog(v + τ²) as the log of products of ``chunk`` factors at a time, as many as cannot overflow
    (each lies between min v + min τ² and max v + max τ² of the call).

    Two loop orders with the same operations in the same order per (row, τ²), so the same bits: ``by_column``
    sweeps the study columns, each as NumPy operations over all rows and grid points (what runs fast as Python);
    otherwise row by row, the grid innermost (what runs fast compiled). Padding adds w = 0 and a factor 1 (exact).
    math.log, not np.log: NumPy's own log differs from the C library's (which numba calls) in ~1 of 100,000
    last bits."""
    n_rows, n_grid, n_cols = rows.size, grid.shape[1], y.shape[1]
    if n_rows * n_grid == 0:
        return
    if by_column:  # the least and largest v used (exact either way)
        low, high = np.where(mask[rows], v[rows], np.inf).min(), np.where(mask[rows], v[rows], 0.0).max()
    else:
        low, high = np.inf, 0.0
        for j in range(n_rows):
            for i in range(n_cols):
                if mask[rows[j], i]:
                    low = min(low, v[rows[j], i])
                    high = max(high, v[rows[j], i])
    bits = max(abs(math.log2(low + grid.min())), abs(math.log2(high + grid.max())), 1.0)
    chunk = max(1, int(1000.0 / bits))  # 2^±1000 stays clear of overflow and of subnormals
    s = np.zeros((n_rows, n_grid))
    swd = np.zeros((n_rows, n_grid))
    swd2 = np.zeros((n_rows, n_grid))
    product = np.ones((n_rows, n_grid))
    log_det = np.zeros((n_rows, n_grid))
    ref = np.empty(n_rows)
    for j in range(n_rows):
        ref[j] = y[rows[j], top_of[rows[j]]]
    if by_column:
        for i in range(n_cols):
            used = mask[rows, i].reshape(n_rows, 1)
            f = np.where(used, v[rows, i].reshape(n_rows, 1) + grid, 1.0)
            w = np.where(used, 1.0 / f, 0.0)
            d = (y[rows, i] - ref).reshape(n_rows, 1)
            s += w
            wd = w * d
            swd += wd
            swd2 += wd * d
            product *= f
            if (i + 1) % chunk == 0:
                for j in range(n_rows):
                    for g in range(n_grid):
                        log_det[j, g] += math.log(product[j, g])
                        product[j, g] = 1.0
    else:
        for j in range(n_rows):
            b = rows[j]
            for i in range(n_cols):
                if mask[b, i]:
                    d = y[b, i] - ref[j]
                    for g in range(n_grid):
                        f = v[b, i] + grid[j, g]
                        wi = 1.0 / f
                        s[j, g] += wi
                        wd = wi * d
                        swd[j, g] += wd
                        swd2[j, g] += wd * d
                        product[j, g] *= f
                if (i + 1) % chunk == 0:
                    for g in range(n_grid):
                        log_det[j, g] += math.log(product[j, g])
                        product[j, g] = 1.0
    for j in range(n_rows):
        for g in range(n_grid):
            total = log_det[j, g] + math.log(product[j, g]) + swd2[j, g] - swd[j, g] * (swd[j, g] / s[j, g])
            out[j, g] = total + math.log(s[j, g]) if reml else total


def loglik_profile(batch, grid, rows, reml):
    """−2 × the (restricted) log-likelihood, up to a constant per row, of the analyses ``rows`` at the τ² values
    ``grid`` (one row of τ² values per analysis), by :func:`_loglik_profile`: column by column while the kernel
    runs as Python (unless the studies are many), else row by row."""
    out = np.empty(grid.shape)
    grid = np.ascontiguousarray(grid, dtype=float)
    by_column = _loglik_profile.compiled is None and 4 * batch.y.shape[1] <= PYTHON_CALL
    args = (batch.y, batch.v, batch.mask, batch.top(), np.ascontiguousarray(rows), grid, reml, by_column, out)
    _loglik_profile(*args)
    return out


@dataclass(frozen=True)
class Weighted:
    """The weighted sums every estimator needs, at τ² = ``tau2`` (one value per row of ``batch``).

    Residuals are taken from the study of largest weight, y_ref: r = d − δ with d = y − y_ref and
    δ = Σw d/S, so μ = y_ref + δ. When one weight dwarfs the rest, that study's residual −δ is then exact
    to rounding, where y − μ would be the difference of two nearly equal numbers (and yᵀP²y, which
    multiplies it by w², noise). All sums come from one compiled pass (:func:`_weighted_sums`).
    """

    batch: Batch
    rows: np.ndarray | None  # the rows of ``batch`` these sums are for (None: all)
    tau2: np.ndarray
    s: np.ndarray  # Σw
    s2: np.ndarray  # Σw²
    mu: np.ndarray  # weighted mean
    q: np.ndarray  # Σw(y−μ)²
    ypy2: np.ndarray  # yᵀP²y = Σw²(y−μ)², also −dQ/dτ²
    ypy3: np.ndarray  # yᵀP³y = Σw(wr − m)², m = Σw²r/S
    tr_p: np.ndarray
    tr_p2: np.ndarray
    log_det: np.ndarray  # Σ log(v + τ²)

    @classmethod
    def of(cls, batch, tau2, rows=None, level=1):
        """``level``: 0 only S, S2, μ, Q, yᵀP²y (the rest NaN), 1 all but ``log_det``, 2 all."""
        n = batch.k.size if rows is None else rows.size
        tau2 = np.ascontiguousarray(np.broadcast_to(np.asarray(tau2, dtype=float), (n,)))
        out = np.full((n, 9), np.nan)
        index = np.arange(n) if rows is None else rows
        _weighted_sums(batch.y, batch.v, batch.mask, batch.top(), index, tau2, level, out)
        return cls(batch, rows, tau2, *out.T)

    @property
    def w(self):
        batch = self.batch if self.rows is None else self.batch.subset(self.rows)
        return weights(batch, self.tau2)

    @property
    def logdet_xwx(self):
        """log|XᵀWX| = log Σw for X = 1."""
        return np.log(self.s)


def at_tau2(batch, tau2, rows=None, level=1):
    """The sums of :class:`Weighted` at τ² = ``tau2`` for all rows of ``batch`` (or the rows ``rows``)."""
    return Weighted.of(batch, tau2, rows, level)


@dataclass(frozen=True)
class Root:
    """A root of a decreasing estimating equation, with how it was established.

    ``converged``: the point solves its equation to the tolerance, checked there: either a Newton step from it
    is ≤ tol·(x + floor) with a negative derivative (a strict downward crossing: a maximum, for a score), or
    the sign change is bracketed within that width, or the equation is 0 to working precision.
    ``capped``: no sign change was found below the search limit, so ``x`` is that limit, not a root.
    ``boundary``: the equation is ≤ 0 at the lower end (0) and no crossing was found above it within
    the floor: the solution is the boundary itself (converged).
    """

    x: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    capped: np.ndarray
    boundary: np.ndarray


@kernel(lambda rows, *_: rows.size)
def _newton_update(rows, f, d, scale, info, x, lo, hi, unit, cap, tol, done, converged, capped, boundary, iters):
    """One step of :func:`solve_decreasing` for each row in ``rows`` (compiled; the rules are documented there)."""
    for j in range(rows.size):
        i = rows[j]
        xi, fi, di = x[i], f[j], d[j]
        iters[i] += 1
        lo_i, hi_i = lo[i], hi[i]
        if fi > 0:
            lo_i = xi
        elif fi < 0:
            hi_i = xi
        lo[i], hi[i] = lo_i, hi_i
        floor = EPS * unit[i]
        width = tol * (xi + floor)
        if fi == 0 or abs(fi) <= 16 * EPS * scale[j] or (lo_i >= 0 and hi_i - lo_i <= width):
            converged[i] = done[i] = True
            continue
        if di < 0 and abs(fi / di) <= width:
            x[i] = max(xi - fi / di, 0.0)
            converged[i] = done[i] = True
            continue
        left = max(lo_i, 0.0)
        newton = xi - fi / di if di < 0 else np.nan
        scoring = xi + fi / info[j] if info[j] > 0 else np.nan
        if np.isfinite(newton) and left < newton < hi_i:
            new = newton
        elif np.isfinite(scoring) and left < scoring < hi_i:
            new = scoring
        elif not np.isfinite(hi_i):
            new = 4 * max(xi, lo_i, unit[i])
        elif lo_i < 0:
            new = 0.0625 * hi_i
        elif lo_i > 0 and hi_i > 4 * lo_i:
            new = np.sqrt(lo_i * hi_i)
        else:
            new = 0.5 * (lo_i + hi_i)
        if new > cap[i]:
            x[i] = cap[i]
            capped[i] = done[i] = True
        elif lo_i < 0 and new < floor:
            x[i] = 0.0
            boundary[i] = converged[i] = done[i] = True
        else:
            x[i] = new


def solve_decreasing(fun, x, lo, hi, active, tol, maxiter, unit, cap):
    """Safeguarded Newton for a sign change of ``f`` from + to − (one design for every iterative quantity).

    ``fun(x, rows)`` returns (f, f′, f_scale, info) at x for the batch rows ``rows``, where f_scale is the
    size of the terms whose difference f is (so |f| ≤ 16·ε·f_scale means f is 0 to working precision) and
    info > 0 an expected information (Fisher scoring's step f/info is the second choice when Newton's leaves
    the bracket or f′ ≥ 0). ``lo``: a point with f > 0, or −1 where none is known yet; ``hi``: a point with
    f < 0, or inf. Each step is the Newton step if it stays strictly inside (lo, hi), else the scoring step
    if that does; otherwise bisection (geometric when the bracket spans more than a factor 4), a fourfold
    expansion (from at least ``unit``) while no upper point is known, or a 16-fold contraction towards 0
    while no lower point is known. ``unit`` is a per-row length on the data's own scale (the smallest vᵢ
    for τ²), so stopping is scale-free: relative to x + floor, floor = ε·unit (a τ² below ε·min v changes
    no weight). A row stops as ``capped`` when the expansion passes ``cap``, and as ``boundary`` when the
    contraction passes the floor without finding f > 0. Every loop is bounded by ``maxiter``; rows that
    hit it are reported not converged.
    """
    x, lo, hi = (np.array(a, dtype=float) for a in (x, lo, hi))
    unit = np.ascontiguousarray(unit, dtype=float)
    cap = np.ascontiguousarray(cap, dtype=float)
    n = x.shape[0]
    done = ~np.asarray(active, dtype=bool)
    flags = np.zeros((3, n), dtype=bool)
    converged, capped, boundary = flags
    iters = np.zeros(n, dtype=np.int64)
    for _ in range(maxiter):
        rows = np.flatnonzero(~done)
        if rows.size == 0:
            break
        f, d, scale, info = (np.ascontiguousarray(a, dtype=float) for a in fun(x[rows], rows))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            _newton_update(rows, f, d, scale, info, x, lo, hi, unit, cap, tol, done, converged, capped, boundary, iters)
    return Root(x, converged & done, iters, capped, boundary)
