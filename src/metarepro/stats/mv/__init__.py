"""Multilevel and multivariate meta-analysis, metafor's ``rma.mv()``.

The model is ``y = Xβ + u + e`` with ``e ~ N(0, V)`` (V known, block-diagonal by cluster) and random effects

* nested random intercepts of any depth (metafor ``random = ~ 1 | study/sample/effect``): ``nested=[study,
  sample, effect]`` gives one variance component σ²_l per level, where level l is the combination of the first
  l factors, as metafor's ``study/sample`` means ``study`` and ``study:sample``;
* ``~ inner | outer`` (``inner=marker, outer=sample``) with ``struct`` ``ID``, ``DIAG``, ``CS``, ``HCS``, ``UN``
  or ``AR`` (τ²ρ^|a−b| over the sorted inner levels a, b, as metafor's): effects in the same outer group covary
  by G[inner_i, inner_j];
* both together.

Defaults as metafor: ``method="REML"``, ``test="z"``, ``dfs="residual"``, ``level=95``.

Structure for scale: rows are split into independent blocks (connected components of V's blocks and every
grouping), blocks of equal size are stacked, and every quantity is a sum over blocks: nothing k×k is formed.

Modules, along the model's seams: ``structures`` (grouping codes, :class:`BlockV`, the G structures and their
derivatives), ``model`` (the independent blocks; M(θ) and dM/dθ), ``likelihood`` (log-likelihoods, GLS, score
and information), ``solver`` (:class:`MVControl`; Fisher scoring with boundaries; starting values), ``results``
(:class:`RmaMvResult`), ``inference`` (profile-likelihood :func:`confint`, likelihood-ratio :func:`anova`),
``fit`` (:func:`rma_mv`).
"""

from metarepro.stats.mv.fit import rma_mv
from metarepro.stats.mv.inference import anova, confint
from metarepro.stats.mv.results import RmaMvResult
from metarepro.stats.mv.solver import MVControl
from metarepro.stats.mv.structures import BlockV

__all__ = ["BlockV", "MVControl", "RmaMvResult", "anova", "confint", "rma_mv"]
