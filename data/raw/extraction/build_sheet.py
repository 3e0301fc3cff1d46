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
# statistics the first passes could only write in 'notes' (no column took them); see STATISTICS_FROM_NOTES
COLUMNS[COLUMNS.index("p") + 1 : COLUMNS.index("p") + 1] = ["d", "z", "F"]
# subgroup means (and sizes) a source prints for a group, for the arithmetic-impossibility rule (README); see SUBGROUPS
COLUMNS[COLUMNS.index("max_controls") + 1 : COLUMNS.index("max_controls") + 1] = [
    "subgroup_means_cases", "subgroup_n_cases", "subgroup_means_controls", "subgroup_n_controls",
]  # fmt: skip
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
# Likely duplicate publications / overlapping samples found later (quality rule 'overlap', README
# "Overlaps"): the linked rows take the primary row's study_id, sort after it, and say why in 'notes'.
LINKED = {
    "CRP_IL6_episodes_72v60": (
        "UnknownAJP2017",
        "the same paper as UnknownAJP2017 (Asian J Psychiatr 2017;27:71-75, PMID 28558901: same title, same "
        "n 72/60, same p values for CRP and IL-6), entered twice from two stored copies; study_id set to "
        "UnknownAJP2017, whose rows are primary because they carry the PMID, DOI and citation",
    ),
    "Yang2007": (
        "YangK2005",
        "same first author and co-authors (Yang Kun, Zhang Zhongxing, Xie Guangrong) and the same n 33/23 as "
        "Yang 2005: treated as one sample; study_id set to YangK2005, the earlier paper, which also prints the "
        "group means",
    ),
    "Lishui_BDcontrol2020": (
        "CaoJ2021",
        "same hospital (Second People's Hospital of Lishui) and overlapping recruitment (Feb 2019-Feb 2020 vs "
        "Jan 2019-May 2020) as Cao 2021: patients possibly shared, so one sample; study_id set to CaoJ2021",
    ),
    "YuanGP_Cixi": (
        "Yuan_Cixi",
        "the same paper as Yuan_Cixi (Yuan Guoping, Cixi; the syue.com entry links this very abstract page as its "
        "Chinese copy): the same means, values and t for IL-6, TNF-a and CRP; entered twice from two copies "
        "(issue 17 audit); study_id set to Yuan_Cixi, whose rows are primary because they carry the group sizes",
    ),
    "CN_jxxfw_sertraline": (
        "CN_ZGYXCX2018_sertraline_IL17",
        "the same abstract as CN_ZGYXCX2018_sertraline_IL17 (sertraline and IL-17, 30 vs 30 depression patients "
        "recruited Sep 2015-Aug 2017, the same findings for IL-6, TNF-a and IL-1b), entered twice from two copies "
        "(issue 17 audit); study_id set to CN_ZGYXCX2018_sertraline_IL17, whose rows name the journal and year",
    ),
}
PRIMARY_NOTE = {
    "UnknownAJP2017": "primary entry of this paper (carries PMID/DOI); a second entry of it (CRP_IL6_episodes_72v60) "
    "shares this study_id",
    "YangK2005": "primary row of the Yang Kun cohort (earlier paper, group means printed); Yang 2007 (same authors, "
    "n 33/23) shares this study_id",
    "Yuan_Cixi": "primary entry of this paper (its English abstract prints n 46/35); a second entry of it "
    "(YuanGP_Cixi, from the Chinese copy) shares this study_id",
    "CN_ZGYXCX2018_sertraline_IL17": "primary entry of this abstract (journal and year named); a second entry of it "
    "(CN_jxxfw_sertraline) shares this study_id",
    "CaoJ2021": "primary for the Lishui depressed samples: MDD vs healthy controls is this paper's own comparison "
    "(in the Lishui 2020 study the depressed group is the 'positive control' of a bipolar study) and it has the "
    "larger sample (75/50); chosen on these design grounds; the Lishui 2020 rows share this study_id",
}
# Statistics the first pass wrote in 'notes' because no column took them, moved into their columns as
# printed (the notes keep the quotation). The second pass compared only FIELDS, so these are single readings.
STATISTICS_FROM_NOTES = {
    "B:Dhabhar2009:IL-10#1": {"d": "-0.96"},  # 'Cohen's d = -0.96'
    "D:Vogelzangs2012a:CRP#1": {"d": "0.32"},  # 'Cohen's d=0.32' (group n not in the abstract: not usable)
    "D:Vogelzangs2012a:IL-6#1": {"d": "0.23"},  # 'Cohen's d=0.23' (group n not in the abstract: not usable)
    "B:ElNeely2020:TNF-a#1": {"z": "4.710"},  # 'Z = 4.710' (Mann-Whitney)
    "B:Li2026:TNF-a#1": {"z": "-2.12"},  # 'z = -2.12' (nonparametric; cases higher)
    "C:Ryan2022:IL-6#1": {"F": "7.94"},  # 'adjusted ANCOVA F(1,112)=7.94'
    "C:Ryan2022:TNF-a#1": {"F": "6.53"},  # 'adjusted ANCOVA F(1,115)=6.53'
    "B:Zhu2022:IL-8#1": {"F": "19.38"},  # drug-free vs HCs, covariate-adjusted, log10 scale
    "B:Cai2023:IL-8#1": {"F": "3.82"},  # SSRI-treated vs HCs, covariate-adjusted
    "A:Rawdin2013:IL-10#1": {"F": "0.03"},  # ANCOVA on ln values (no direction stated)
    "A:Rawdin2013:IL-6#1": {"F": "0.75"},  # ANCOVA on ln values (no direction stated)
}
STATISTIC_CAVEAT = {
    "C:Ryan2022:IL-6#1": "F is covariate-adjusted and its df (112) imply fewer participants than n 86/57",
    "C:Ryan2022:TNF-a#1": "F is covariate-adjusted and its df (115) imply fewer participants than n 86/57",
    "B:Zhu2022:IL-8#1": "F is covariate-adjusted, on log10 IL-8",
    "B:Cai2023:IL-8#1": "F is covariate-adjusted",
}
# Subgroup means a source prints for a group (README "Numbers that no data could produce"), as printed, with the
# quotation added to 'notes'. Cao 2021: mild/moderate/severe are the severity grades of all 75 patients; sizes not
# printed. Read by the second extraction (its eligibility comment) and again from the source page for issue 17.
SUBGROUPS = {
    "D:CaoJ2021:CRP#1": (
        {"subgroup_means_cases": "3.03; 10.41; 25.71"},
        "subgroup_means_cases from the same abstract: 'Serum hs-CRP level in patients with moderate and severe "
        "depression was (10.41 +/- 2.21) mg/L and (25.71 +/- 4.04) mg/L, respectively, which was significantly higher "
        "than that in patients with mild depression [(3.03 +/- 0.49) mg/L' (subgroup sizes not printed)",
    ),
}
# Eligibility judgements changed by an audit (issue 17), with the reason: (value, comment).
ELIGIBILITY = {
    "C:ChenXY2024:IL-1b#1": "unclear",
    "C:ChenXY2024:IL-6#1": "unclear",
    "C:ChenXY2024:TNF-a#1": "unclear",
    "A:Fornaro2011:IL-6#1": "yes",
}
ELIGIBILITY_WHY = {
    "ChenXY2024": "audit: cases are inpatients with depression AND insomnia (general practice department) and the "
    "abstract names no diagnostic criteria, so MDD is not established (the second pass had said yes)",
    "Fornaro2011": "audit: eligible (the second pass had said unclear): the abstract states DSM-IV MDD with a current "
    "major depressive episode vs 16 healthy controls, and the row holds the baseline values drawn before anyone took "
    "duloxetine; the controls' later duloxetine concerns week 6 (not used), and serum/plasma and prior medication "
    "are unstated as in many eligible abstracts",
}
# Statistics in 'notes' deliberately not moved into a column, with the reason.
NOT_MOVED = {
    "C:CN_pain_670337574:IL-6#2": (
        "the printed 'd=1.2' is not moved into column d: it equals the raw mean difference 12.5 - 11.3 = 1.2, "
        "and a Cohen's d of 1.2 with n 31/30 would give p near 1e-5, not the printed P=0.041 (which the means "
        "and SDs reproduce: t = 2.08, p = 0.042)"
    ),
    "A:ZhangZaifu_IL6:IL-6#1": "F=1362.51 is not moved into column F: it tests the combined depressed group (n=143), "
    "not this row's unipolar group",
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
        if key in ELIGIBILITY:
            r["eligibility_second_pass"] = ELIGIBILITY[key]
            second_said = f"second pass: {r['eligibility_comment']}" if r["eligibility_comment"] else ""
            r["eligibility_comment"] = "; ".join(x for x in (ELIGIBILITY_WHY[r["study_id"]], second_said) if x)
        if key in SUBGROUPS:
            cells, quotation = SUBGROUPS[key]
            r.update(cells)
            r["notes"] = "; ".join(x for x in (r["notes"], quotation) if x)
        if s and s.get("dispersion_label", "").strip():
            details.append(f"dispersion label on the page: {s['dispersion_label'].strip()}")
        for column, value in STATISTICS_FROM_NOTES.get(key, {}).items():
            r[column] = value
            moved = f"{column} = {value} moved from these notes into column {column}, as printed"
            r["notes"] = "; ".join(x for x in (r["notes"], moved, STATISTIC_CAVEAT.get(key, "")) if x)
        if key in NOT_MOVED:
            r["notes"] = "; ".join(x for x in (r["notes"], NOT_MOVED[key]) if x)
        r["verified"] = "; ".join(details)
        r["_linked"] = r["study_id"] in LINKED
        if r["study_id"] in LINKED:
            primary, why = LINKED[r["study_id"]]
            r["notes"] = (r["notes"] + "; " + why).strip("; ")
            r["study_id"] = primary
        elif r["study_id"] in PRIMARY_NOTE:
            r["notes"] = (r["notes"] + "; " + PRIMARY_NOTE[r["study_id"]]).strip("; ")
        if r["study_id"] in COHORT:
            r["notes"] = (r["notes"] + f"; same cohort as {COHORT[r['study_id']]} (study_id set to it)").strip("; ")
            r["study_id"] = COHORT[r["study_id"]]
        rows.append(r)
rows.sort(key=lambda r: (r["marker"], r["study_id"].lower(), r.pop("_linked")))
with open(sys.argv[1], "w", newline="", encoding="utf-8") as fh:
    w = csv.DictWriter(fh, fieldnames=COLUMNS + EXTRA)
    w.writeheader()
    w.writerows(rows)
print(len(rows), "rows", len({r["study_id"] for r in rows}), "study_ids")
print(collections.Counter(r["verification"] for r in rows))
