"""Build data/raw/antiinflammatory_mdd_trials.csv from the first treatment extraction (issue 19).

    python data/raw/extraction/build_treatment_sheet.py   (from the repository root)

Reads treatment_first_extraction_A.csv (one row per trial x outcome, as read from one stored page), checks every
row (numbers are numbers, vocabularies, counts within totals, percentages within 0-100, an outcome and a page
for every row), adds the provenance columns and writes the sheet. Nothing is computed: a cell the page does not
print stays empty. verification is 'single' for every row until an independent second extraction exists (then a
compare step like build_sheet.py's for the cytokine sheet sets confirmed / resolved / unconfirmed). It also prints
the counts table of data/raw/README.md ("The treatment extraction").
"""

import collections
import csv
import sys
from pathlib import Path

HERE = Path(__file__).parent
SOURCE = HERE / "treatment_first_extraction_A.csv"
TARGET = HERE.parent / "antiinflammatory_mdd_trials.csv"
EXTRA = ["extracted_by", "verification"]
NUMERIC = (
    "n_total n_treatment n_placebo events_treatment events_placebo pct_treatment pct_placebo mean_treatment "
    "sd_treatment mean_placebo sd_placebo md md_ci_low md_ci_high smd t df"
).split()
# p is kept as printed: an exact value, or an inequality such as '<0.001' (text, so a reader never takes a bound
# for the value)
OUTCOMES = {"score", "response", "remission"}
DIRECTIONS = {"", "favours_treatment", "favours_placebo", "no_difference_stated"}
ELIGIBLE = {"yes", "no", "unclear"}


def _number(text):
    try:
        return float(text)
    except ValueError:
        return None


def check(rows):
    """Every problem of the sheet at once, one line each naming the line, the trial and the cell."""
    problems = []
    for line, r in enumerate(rows, start=2):
        where = f"{SOURCE.name}, line {line} ({r['study_id']}, {r['outcome']})"
        for column in NUMERIC:
            if r[column] and _number(r[column]) is None:
                problems.append(f"{where}: {column} '{r[column]}' is not a number")
        if r["p"] and _number(r["p"].lstrip("<>=")) is None:
            problems.append(f"{where}: p '{r['p']}' is neither a number nor an inequality")
        if r["outcome"] not in OUTCOMES:
            problems.append(f"{where}: outcome '{r['outcome']}' is not one of {sorted(OUTCOMES)}")
        if r["direction"] not in DIRECTIONS:
            problems.append(f"{where}: direction '{r['direction']}' is not one of {sorted(DIRECTIONS)}")
        if r["eligible_mdd"] not in ELIGIBLE:
            problems.append(f"{where}: eligible_mdd '{r['eligible_mdd']}' is not one of {sorted(ELIGIBLE)}")
        if not r["source_url"] or not r["location"]:
            problems.append(f"{where}: every row names its page (source_url) and where on it (location)")
        for arm in ("treatment", "placebo"):
            events, total, pct = (_number(r[f"{c}_{arm}"] or "nan") for c in ("events", "n", "pct"))
            if events == events and total == total and events > total:
                problems.append(f"{where}: events_{arm} {events:g} > n_{arm} {total:g}")
            if pct == pct and not 0 <= pct <= 100:
                problems.append(f"{where}: pct_{arm} {pct:g} is not a percentage")
        if r["outcome"] == "score" and (r["events_treatment"] or r["events_placebo"]):
            problems.append(f"{where}: a score row holds event counts")
    return problems


def usable(r):
    """Whether a row can enter a pooled analysis as it stands, and in which form (the README's counts)."""
    if r["analysis_set"].startswith("subgroup"):
        return ""  # a subgroup is not the randomised comparison (README)
    n_both = r["n_treatment"] and r["n_placebo"]
    if r["outcome"] in ("response", "remission"):
        return "counts" if n_both and r["events_treatment"] and r["events_placebo"] else ""
    if n_both and all(r[c] for c in ("mean_treatment", "sd_treatment", "mean_placebo", "sd_placebo")):
        return "means and SDs"
    if r["md"] and r["md_ci_low"] and r["md_ci_high"]:
        return "difference with CI"
    if r["smd"] and n_both:
        return "SMD with n"
    if r["t"] and n_both:
        return "t with n"
    if r["p"] and _number(r["p"]) is not None and n_both and r["direction"] in ("favours_treatment", "favours_placebo"):
        return "exact p with n and direction"
    return ""


def main():
    rows = list(csv.DictReader(open(SOURCE, encoding="utf-8")))
    problems = check(rows)
    if problems:
        sys.exit("\n".join(problems))
    columns = list(rows[0]) + EXTRA
    with open(TARGET, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "extracted_by": "pass A, issue 19 (one extractor, pages corpus)",
                             "verification": "single"})  # fmt: skip
    trials = collections.OrderedDict()
    for r in rows:
        trials.setdefault(r["study_id"], []).append(r)
    print(f"{len(rows)} rows, {len(trials)} trials -> {TARGET}")
    by_class = collections.defaultdict(lambda: collections.Counter())
    for trial_rows in trials.values():
        agent = trial_rows[0]["agent_class"]
        counts = by_class[agent]
        counts["trials"] += 1
        mdd = trial_rows[0]["eligible_mdd"] == "yes"
        counts["MDD (eligible yes)"] += mdd
        for outcome in ("score", "response", "remission"):
            those = [r for r in trial_rows if r["outcome"] == outcome]
            counts[f"{outcome} rows"] += len(those)
            counts[f"{outcome} usable"] += any(usable(r) for r in those)
            counts[f"{outcome} usable MDD"] += mdd and any(usable(r) for r in those)
        counts["rows"] += len(trial_rows)
    header = ["agent class", "trials", "MDD (eligible yes)", "rows", "score rows", "score usable", "score usable MDD",
              "response rows", "response usable", "response usable MDD", "remission rows", "remission usable",
              "remission usable MDD"]  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    total = collections.Counter()
    for agent in sorted(by_class):
        total.update(by_class[agent])
        print("| " + " | ".join([agent] + [str(by_class[agent][h]) for h in header[1:]]) + " |")
    print("| " + " | ".join(["all"] + [str(total[h]) for h in header[1:]]) + " |")
    for r in rows:
        if usable(r):
            print(f"usable: {r['study_id']} {r['outcome']} ({usable(r)}; eligible_mdd {r['eligible_mdd']})")


if __name__ == "__main__":
    main()
