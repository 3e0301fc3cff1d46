"""Build data/raw/antiinflammatory_mdd_trials.csv from the two treatment extractions (issue 19).

    python data/raw/extraction/build_treatment_sheet.py   (from the repository root)

Reads treatment_first_extraction_A.csv (one row per trial x outcome, as read from one stored page) and the independent
second extraction treatment_second_extraction_V1.csv (read from the same pages by a second extractor who saw only the
source list printed by treatment_source_list.py, never the first pass's numbers), checks every row (numbers are
numbers, vocabularies, counts within totals, percentages within 0-100, an outcome and a page for every row), compares
the two cell by cell (compare_passes) and sets verification per row, as build_sheet.py does for the cytokine sheet:
confirmed (the passes agree on every number and the direction), resolved (they disagreed; the page was re-read and
RESOLVED says, in the row's notes, which cell, both readings and the resolution) or disputed (the page cannot settle
it; DISPUTED). A disagreement that is in neither dict stops the build. Nothing is computed: a cell the page does not
print stays empty. It also prints the counts table of data/raw/README.md ("The treatment extraction").
"""

import collections
import csv
import sys
from pathlib import Path

HERE = Path(__file__).parent
SOURCE = HERE / "treatment_first_extraction_A.csv"
SECOND = HERE / "treatment_second_extraction_V1.csv"
TARGET = HERE.parent / "antiinflammatory_mdd_trials.csv"
EXTRA = ["extracted_by", "verification", "verified", "eligibility_second_pass", "eligibility_comment"]
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


def _p(text):
    """A printed p as (inequality, value), so '.44' and '0.44' or '<.001' and '<0.001' compare equal."""
    text = (text or "").replace(" ", "")
    return (text[:1] if text[:1] in "<>" else "", _number(text.lstrip("<>=") or "nan")) if text else None


def compare_passes(first, second):
    """[(cell, first reading, second reading)] for every number, p, weeks and direction on which the passes differ."""
    cells = NUMERIC + ["weeks"]
    diffs = [(c, first[c], second[c]) for c in cells if _number(first[c] or "nan") != _number(second[c] or "nan")
             and (first[c] or second[c])]  # fmt: skip
    if _p(first["p"]) != _p(second["p"]):
        diffs.append(("p", first["p"], second["p"]))
    if first["direction"] != second["direction"]:
        diffs.append(("direction", first["direction"], second["direction"]))
    return diffs


# The direction rule both passes are held to after the comparison (README): direction is the arm the page says did
# better, in words ('an advantage ... that did not reach statistical significance', 'a trend toward superiority',
# 'a higher remission rate') or by printing the two arms' response rates, significant or not; no_difference_stated
# only where the page says there was no (significant) difference and shows no arm doing better; empty where the page
# says nothing about the comparison. The second pass had left direction empty or no_difference_stated wherever the
# difference was not significant; that is why seven of the resolutions below keep the first pass's favours_treatment.
_WORDS_RULE = "kept favours_treatment by the direction rule (README: the arm the page says or shows did better)"
# Disagreements between the passes, each re-read on the page: cell updates (empty when the first pass's reading is
# kept) and the resolution, added to the row's notes.
RESOLVED = {
    "Raison2013:response": (
        {},
        f"direction: first pass favours_treatment, second pass empty; the page prints 62% (8/13) "
        f"vs 33% (3/9), p=0.19; {_WORDS_RULE}",
    ),
    "Dean2017:score": (
        {},
        "direction: first pass no_difference_stated, second pass empty (the dro.deakin excerpt "
        "stops at 'Results: Based on mixed-methods repeated measures'); re-read on the "
        "nfdi-search.nliwod.org copy of the same abstract (doi 10.1177/0004867417709357): 'at week "
        "12, there no significant difference scores between groups' - first pass kept",
    ),
    "Gougol2015:remission": (
        {"direction": "no_difference_stated"},
        "direction: first pass empty, second pass no_difference_stated; the page says 'remission "
        "rate was not significantly different between the two groups (p=0.36)' and shows no arm "
        "doing better - set to no_difference_stated (direction rule)",
    ),
    "Lesperance2011:score": (
        {},
        "md, md_ci_low, md_ci_high, p, direction: first pass MADRS 0.97 (-0.012 to 1.95), "
        "P .053, favours_treatment; second pass the primary IDS-SR30 1.32 (-0.20 to 2.84), P "
        ".088, no_difference_stated, and in its comment the same MADRS numbers as the first "
        "pass; the page prints both - the first pass's clinician-rated MADRS row is kept (one "
        "score row per trial, clinician-rated scale preferred, as for Carney 2009), its numbers "
        "now read by both passes; direction: the page concludes 'a trend toward superiority of "
        f"omega-3', {_WORDS_RULE}",
    ),
    "Mischoulon2009:score": (
        {},
        "direction: first pass favours_treatment, second pass no_difference_stated; the page "
        "says 'EPA demonstrated an advantage over placebo that did not reach statistical "
        f"significance'; {_WORDS_RULE}",
    ),
    "Mischoulon2009:response": (
        {},
        "direction: first pass favours_treatment, second pass no_difference_stated; the "
        f"page prints 38% (6/16) vs 21% (4/19), P=.45; {_WORDS_RULE}",
    ),
    "Jazayeri2008:response": (
        {},
        "direction: first pass favours_treatment, second pass empty; the page prints response "
        f"81% (combination) vs 50% (fluoxetine), no p; {_WORDS_RULE}",
    ),
    "Rogers2008:score": (
        {"mean_treatment": "8.4", "mean_placebo": "9.6"},
        "mean_treatment, mean_placebo: first pass empty ('not entered as means', no SDs), second pass "
        "8.4 and 9.6; the page prints 'Mean depression score was 8.4 for the EPA+DHA group and 9.6 "
        "for the placebo group' - entered as printed (without SDs, as the Carney 2009 and DeBattista "
        "2000 means are; they do not make the row usable by themselves)",
    ),
    "Mischoulon2015:score": (
        {},
        "p: first pass '>0.05', second pass empty; the page prints 'neither n-3 preparation "
        "separated from placebo (P > .05)' - the inequality is kept as printed (p is text)",
    ),
    "Peet2002:response": (
        {},
        "direction: first pass favours_treatment, second pass empty; the page prints 9 (53%) of "
        f"17 on 1 g/d vs 5 (29%) of 17 on placebo, no p; {_WORDS_RULE}",
    ),
    "Menter2010:score": (
        {},
        "n_total: first pass 96, second pass empty (the daneshyari abstract prints only the arm "
        "sizes 52 and 44); re-read: doctorslounge.com news/pb/10797 ('a randomized controlled trial "
        "of 96 patients') and medwirenews 87826 ('randomly assigned 96 patients') print 96 for "
        "this trial - first pass kept, printed on those secondary pages, not summed",
    ),
    "Su2008:remission": (
        {},
        "direction: first pass favours_treatment, second pass no_difference_stated; the page says "
        "'a higher remission rate, although the latter did not reach statistical significance "
        f"(38% vs. 18%, p = .28)'; {_WORDS_RULE}",
    ),
    "Carney2009:score": (
        {},
        "mean_treatment, mean_placebo, md_ci_low, md_ci_high, t, df, p: first pass HAM-D (9.3 vs "
        "9.4, CI -2.2 to 2.4, t115 = 0.12, P = .90), second pass the BDI-II pre-post scores (16.1 "
        "vs 14.8, CI -4.5 to 2.0, t116 = -0.77, P = .44), with the same HAM-D numbers as the first "
        "pass in its comment; the page prints both as main outcomes - the first pass's "
        "clinician-rated HAM-D row is kept, its numbers now read by both passes",
    ),
    "Carney2009:response": (
        {},
        "t, df: first pass empty, second pass 0.15 and 112; the page's t112 = 0.15 tests the "
        "odds ratio, not a two-group mean difference as the sheet's t does - kept empty, quoted "
        "in notes",
    ),
    "Carney2009:remission": (
        {},
        "t, df: first pass empty, second pass -0.11 and 113; the page's t113 = -0.11 tests the "
        "odds ratio - kept empty, quoted in notes",
    ),
    "Berk2020_YoDAA:score": (
        {
            "agent": "rosuvastatin 10 mg/day (aspirin 100 mg/day, the third arm, in notes)",
            "n_treatment": "48",
            "n_placebo": "42",
            "md": "-4.2",
            "md_ci_low": "-9.1",
            "md_ci_high": "0.6",
            "p": "0.089",
            "direction": "no_difference_stated",
            "location": "abstract (Results); the PMC excerpt stops at 'there was no signif', the rest read on "
            "medluna.com article/31948461, the same abstract (PMID 31948461)",
        },
        "n_treatment, n_placebo, md, md_ci_low, md_ci_high, p, direction: first pass empty (the PMC excerpt stops at "
        "'there was no signif'), second pass rosuvastatin vs placebo n 48/42, -4.2 (95% CI -9.1, 0.6), p = 0.089, "
        "no_difference_stated, read on medluna.com article/31948461 (the same abstract, PMID 31948461); re-read there: "
        "'no significant difference between aspirin and placebo (1.9, 95% CI (-2.8, 6.6), p = 0.433), or rosuvastatin "
        "and placebo (-4.2, 95% CI (-9.1, 0.6), p = 0.089)' - entered rosuvastatin vs placebo (the one contrast per "
        "placebo arm; the aspirin contrast stays in these notes); the sign convention of the MADRS differential change "
        "is not printed, so direction is the page's 'no significant difference'",
    ),
}
# Disagreements the page cannot settle: cells cleared, both readings in notes. None after the re-reading.
DISPUTED = {}
# The second pass judged eligibility on its own (column eligibility_second_pass); where it differs from the first
# pass the reason is given; eligible_mdd keeps the first pass's judgement (as the cytokine sheet keeps its first pass).
ELIGIBILITY_WHY = {
    "Nettis2021": "the abstract says 'treatment-resistant depression' and names no diagnosis",
    "Jazayeri2008": "judged 'no placebo arm'; on re-reading, the double-dummy design gives the fluoxetine arm an EPA "
    "placebo, so the combination vs fluoxetine contrast is placebo-controlled add-on: first pass's yes "
    "stands",
    "Peet2002": "the abstract says 'persistent depression despite ongoing treatment' and names no diagnosis (the first "
    "pass took DSM-IV MDD from the trial registry record, as its population says)",
    "Freeman2008": "perinatal women (README: perinatal samples are unclear), although the Cochrane table says MDD",
    "Su2008": "pregnant women (perinatal), although the abstract states DSM-IV MDD",
    "Rees2008": "women in the perinatal period, although the abstract says major depression",
}


def verify(rows, second):
    """Set verification, verified and the eligibility columns per row; apply RESOLVED and DISPUTED."""
    unhandled = []
    for line, r in enumerate(rows, start=2):
        key = f"{r['study_id']}:{r['outcome']}"
        s = second[key]
        diffs = compare_passes(r, s)
        copy = s["found"] == "copy"
        where = ("the second pass could not re-find this page and read the identical abstract on " + s["source_read"]
                 if copy else "")  # fmt: skip
        if not diffs:
            r["verification"] = "confirmed"
            r["verified"] = "; ".join(
                x for x in ("second extraction (V1) agrees on every number and the direction", where) if x
            )
        elif key in RESOLVED or key in DISPUTED:
            updates, why = RESOLVED.get(key) or DISPUTED[key]
            r.update(updates)
            r["verification"] = "resolved" if key in RESOLVED else "disputed"
            r["verified"] = "; ".join(
                f"{c}: first pass {a or 'empty'}, second pass {b or 'empty'}" for c, a, b in diffs
            )
            r["notes"] = "; ".join(x for x in (r["notes"], f"second extraction (issue 19): {why}") if x)
        else:
            unhandled.append(f"{SECOND.name} vs {SOURCE.name}, line {line} ({key}): passes disagree on "
                             + "; ".join(f"{c} ({a!r} vs {b!r})" for c, a, b in diffs)
                             + " - re-read the page and add the row to RESOLVED or DISPUTED")  # fmt: skip
        r["eligibility_second_pass"] = s["eligible_mdd"]
        differs = s["eligible_mdd"] != r["eligible_mdd"]
        r["eligibility_comment"] = (
            f"second pass: {s['eligible_mdd']}: {ELIGIBILITY_WHY[r['study_id']]}" if differs else ""
        )
    return unhandled


def main():
    rows = list(csv.DictReader(open(SOURCE, encoding="utf-8")))
    second = {r["row_key"]: r for r in csv.DictReader(open(SECOND, encoding="utf-8"))}
    problems = check(rows) or verify(rows, second) or check(rows)
    if problems:
        sys.exit("\n".join(problems))
    columns = [c for c in csv.DictReader(open(SOURCE, encoding="utf-8")).fieldnames] + EXTRA
    with open(TARGET, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "extracted_by": "pass A and independent pass V1, issue 19 (pages corpus)"})
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
