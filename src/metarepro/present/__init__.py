"""What a reader sees: figures (``plots``) and the HTML report (``report``), drawn from the analyses' results."""
