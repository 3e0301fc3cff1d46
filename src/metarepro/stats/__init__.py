"""Statistics on arrays: effect sizes (``effects``, ``conversions``), τ² estimators (``tau2``), random-effects
fits (``rma``, ``heterogeneity``), meta-regression (``metareg``), subgroups, influence and leave-one-out,
publication bias (``bias``), permutation tests, multilevel/multivariate models (``rma_mv``), sampling
covariances (``vcalc``), cluster-robust inference (``robust``) and generalized linear mixed models for counts
(``glmm``: metafor's ``rma.glmm``). Arrays in, fitted objects out; no files."""
