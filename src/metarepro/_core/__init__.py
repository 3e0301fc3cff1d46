"""The private numerical core: batched sums and root finding over many intercept-only analyses (``batch``), the
design-matrix sums through the thin QR of W^½X (``wls``; both feed the one set of τ² estimators), distributions
(``dist``), metafor's print layout and number formats (``printing``), size limits (``limits``), spellings of
levels and options (``spellings``) and lazy public names (``lazy``). Nothing here is public API."""
