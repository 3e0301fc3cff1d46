"""Build data/raw/cytokines_mdd.csv from the extraction passes and the verification passes.

    python data/raw/extraction/build_sheet.py data/raw/cytokines_mdd.csv   (from the repository root)

compare_passes() sets each row's verification: confirmed (the independent second extraction agrees on every
number), resolved (they disagreed; cells only one pass read are left empty, values recorded in 'verified'), or
unconfirmed (the second pass could not re-find the page, or the row came after it).
"""

import collections
import csv
import sys
from pathlib import Path

HERE = Path(__file__).parent
SPEC = open(HERE / "extraction_protocol.md").read().split("study_id,study,year,marker")[1].split("\n")[0]
COLUMNS = ("study_id,study,year,marker" + SPEC).split(",")
EXTRA = ["extracted_by", "verification", "verified", "eligibility_second_pass", "eligibility_comment"]
second = {}
for v in ("V1", "V2", "V3"):
    seen = collections.Counter()
    for r in csv.DictReader(open(HERE / f"second_extraction_{v}.csv", encoding="utf-8")):
        seen[r["row_key"]] += 1
        second[f"{r['row_key']}#{seen[r['row_key']]}"] = r

FIELDS = [
    "n_cases",
    "n_controls",
    "mean_cases",
    "sd_cases",
    "sem_cases",
    "mean_controls",
    "sd_controls",
    "sem_controls",
    "median_cases",
    "q1_cases",
    "q3_cases",
    "min_cases",
    "max_cases",
    "median_controls",
    "q1_controls",
    "q3_controls",
    "min_controls",
    "max_controls",
    "t",
    "p",
]


def _number(x):
    x = (x or "").strip()
    try:
        return float(x) if x else None
    except ValueError:
        return x


def compare_passes(first, other):
    """(status, [(field, first value, second value)]) for one row."""
    if other is None or other["found"].strip().lower() != "yes":
        return ("source page not re-found", [])
    diffs = [(f, first.get(f, ""), other.get(f, "")) for f in FIELDS if _number(first.get(f)) != _number(other.get(f))]
    if first.get("direction", "").strip() != other.get("direction", "").strip():
        diffs.append(("direction", first.get("direction", "").strip(), other.get("direction", "").strip()))
    return ("match" if not diffs else "discrepancy", diffs)


# Cohorts reported in several papers: one study_id (the earliest paper's), see README "Overlaps".
COHORT = {
    "Cai2023": "Zhu2022",
    "Yoshimura2019": "Yoshimura2009",
    "Kakeda2020": "Kakeda2018",
    "Dinan2009": "OBrien2007",
    "CN_670519990": "Bi2016",
}
# Disagreements between the passes: cells only one pass read are cleared (conservative), with the
# first pass's value kept in 'verified'. Rudolf2014's two rows are the two case subgroups, which the
# passes listed in opposite order: matched by subgroup they agree.
CLEAR = {
    "A:Nishuty2019:CRP#1": ["p"],
    "A:Huang2007:CRP#1": ["direction"],
    "A:PMID23200828:IL-6#1": ["n_cases", "direction"],
    "A:CN_YYQY2015_16:CRP#1": ["n_cases", "n_controls"],
    "B:Yang2001:TNF-a#1": ["t"],
    "C:CN_pain_670337574:IL-6#1": ["direction"],
    "D:Rief2001:IL-1ra#1": [],
}
NOTES = {
    "B:Yang2001:TNF-a#1": (
        "the page prints t = 1.099 without a sign; the first pass had signed it from the means, "
        "which is an inference, so t is left empty"
    ),
    "C:TNF_RBANS_60v60:TNF-a#1": (
        "second pass read p = 0.006 that the first pass did not record; not entered without a third reading"
    ),
    "D:Rief2001:IL-1ra#1": "second pass read 'cases_higher' that the first pass did not record; not entered",
}
# Numbers that cannot be assigned without inference (group order ambiguous; unit guessed): cleared.
AMBIGUOUS = {
    "A:Dessoki2023:CRP#1": (
        ["mean_cases", "sd_cases", "mean_controls", "sd_controls"],
        "the abstract lists three groups' CRP 'respectively' and it is unclear which value is MDD; numbers left out",
    ),
    "D:CaoJ2021:CRP#1": (
        ["unit"],
        "the abstract prints the unit as 'mL'; the first pass's 'mg/L' was inferred, so unit is left empty",
    ),
}
rows = []
for tag in "ABCDE":
    seen = collections.Counter()
    for r in csv.DictReader(open(HERE / f"first_extraction_{tag}.csv", encoding="utf-8")):
        base = f"{tag}:{r['study_id']}:{r['marker']}"
        seen[base] += 1
        key = f"{base}#{seen[base]}"
        r = {c: (r.get(c) or "").strip() for c in COLUMNS}
        if tag == "A" and r["study_id"] == "Chamberlain2018" and r["marker"] == "CRP":
            continue  # superseded by the round-E row read from the paper's table
        r["extracted_by"] = f"pass {tag}"
        status = compare_passes(r, second.get(key))
        details = []
        if tag == "E":
            if r["study_id"] == "Chamberlain2018":
                r["verification"] = "confirmed"
                details.append(
                    "the same CRP means and 95% CIs were read independently by extraction pass C from the same page"
                )
            else:
                r["verification"] = "unconfirmed"
                details.append("added by the table-page round after the verification pass")
        elif status is None or status[0].startswith("source page not"):
            r["verification"] = "unconfirmed"
            details.append("the second pass could not re-find the source page")
        elif status[0] == "match" or r["study_id"] == "Rudolf2014":
            r["verification"] = "confirmed"
            details.append("second extraction agrees on every number")
        else:
            r["verification"] = "resolved"
            for field, first, other in status[1]:
                details.append(f"{field}: first pass {first or 'empty'}, second pass {other or 'empty'}")
            for field in CLEAR.get(key, []):
                r[field] = ""
            details.append("disputed cells left empty" if CLEAR.get(key) else "kept the value both passes support")
        if key in NOTES:
            details.append(NOTES[key])
        if key in AMBIGUOUS:
            fields, why = AMBIGUOUS[key]
            for field in fields:
                r[field] = ""
            details.append(why)
        s = second.get(key)
        r["eligibility_second_pass"] = (s or {}).get("eligible", "").strip() if tag != "E" else ""
        r["eligibility_comment"] = (
            (s or {}).get("comment", "").strip() if s and s.get("eligible", "").strip() != "yes" else ""
        )
        if s and s.get("dispersion_label", "").strip():
            details.append(f"dispersion label on the page: {s['dispersion_label'].strip()}")
        r["verified"] = "; ".join(details)
        if r["study_id"] in COHORT:
            r["notes"] = (r["notes"] + f"; same cohort as {COHORT[r['study_id']]} (study_id set to it)").strip("; ")
            r["study_id"] = COHORT[r["study_id"]]
        rows.append(r)
rows.sort(key=lambda r: (r["marker"], r["study_id"].lower()))
with open(sys.argv[1], "w", newline="", encoding="utf-8") as fh:
    w = csv.DictWriter(fh, fieldnames=COLUMNS + EXTRA)
    w.writeheader()
    w.writerows(rows)
print(len(rows), "rows", len({r["study_id"] for r in rows}), "study_ids")
print(collections.Counter(r["verification"] for r in rows))
