"""Print the source list the independent second treatment extraction worked from (issue 19).

    python data/raw/extraction/treatment_source_list.py   (from the repository root)

Only the identity and the page of each row (line in the sheet, study_id, outcome, source_url, doi, pmid): no number, no
note, so the second extractor never sees the first extraction's readings (as verification_protocol.md for the cytokine
sheet).
"""

import csv
from pathlib import Path

SHEET = Path(__file__).parent.parent / "antiinflammatory_mdd_trials.csv"
for line, r in enumerate(csv.DictReader(open(SHEET, encoding="utf-8")), start=2):
    print(line, r["study_id"], r["outcome"], r["source_url"], r["doi"], r["pmid"], sep=" | ")
