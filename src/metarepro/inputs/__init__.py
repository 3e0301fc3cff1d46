"""What a researcher gives: extraction sheets (``sheet``: one reader for every table, with messages that name the
file, row and column), the sheets of published results a config compares with (``published``) and the YAML config
(``config``: schema, checks before the first job; the one home of every option's default)."""
