"""Statistics on arrays: effect sizes (``effects``, ``conversions``), τ² estimators (``tau2``), random-effects
fits (``rma``, ``heterogeneity``), meta-regression (``metareg``), subgroups, influence and leave-one-out,
publication bias (``bias``), permutation tests, multilevel/multivariate models (``mv``: ``rma_mv``), sampling
covariances (``vcalc``) and cluster-robust inference (``robust``). Arrays in, fitted objects out; no files."""
