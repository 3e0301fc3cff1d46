"""The private numerical core: batched sums and root finding over many analyses (``batch``), distributions
(``dist``), metafor's print layout and number formats (``printing``), size limits (``limits``), spellings of
levels and options (``spellings``) and lazy public names (``lazy``). Nothing here is public API."""
