"""Statistics on arrays: effect sizes (``effects``, ``effects_binary`` for counts, ``conversions``), τ² estimators
(``tau2``), random-effects fits (``rma``, ``heterogeneity``), Mantel–Haenszel and Peto pooling of 2×2 tables (``mh``,
``peto``), generalized linear mixed models for counts (``glmm``: ``rma_glmm``), meta-regression (``metareg``),
subgroups, influence and leave-one-out, publication bias (``bias``), permutation tests, multilevel/multivariate models
(``mv``: ``rma_mv``), sampling covariances (``vcalc``) and cluster-robust inference (``robust``). Arrays in, fitted
objects out; no files."""
