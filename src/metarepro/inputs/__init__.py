"""What a researcher gives: extraction sheets (``sheet``: one reader for every table, with messages that name the
file, row and column) and the YAML config (``config``: schema, checks before the first job)."""
