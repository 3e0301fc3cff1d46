"""One configured analysis in memory: sheet rows -> effect sizes -> fits (``analysis``), the comparison with
published results (``reproduction``) and the study-level check (``study_level``). No files written here."""
