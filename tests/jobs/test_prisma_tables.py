"""The report job's tables beside the page (metarepro.jobs.outputs.OVERVIEW_TABLES: summary of findings, sensitivity
summaries, PRISMA flow, study characteristics) and the page's PRISMA section, through run_config (the functions the
workflow's jobs call) on Normand 1999 (R metadat dat.normand1999: nine studies, data/raw/normand1999_stroke_los.csv).

Sources of truth: the same run's summary.csv (each analysis's primary fit) and effects.csv (its rows), and the
config's texts."""

import csv
import html

import pandas as pd
import pytest
from conftest import REPO, run_config_in

from metarepro.jobs.outputs import OVERVIEW_TABLES

pytestmark = pytest.mark.workflow
ELIGIBILITY = "Stroke units vs routine care <b>as in</b> Normand 1999"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("prisma")
    (workdir / "sheet.csv").write_bytes((REPO / "data/raw/normand1999_stroke_los.csv").read_bytes())
    return run_config_in(
        workdir,
        f"figure_formats: [svg]\nprisma:\n  eligibility: \"{ELIGIBILITY}\"\nanalyses:\n"
        "  los_md:\n    title: LOS, MD\n    data: sheet.csv\n    where: {marker: length_of_stay}\n    measure: MD\n"
        "  los_smd:\n    title: LOS, SMD\n    data: sheet.csv\n    where: {marker: length_of_stay}\n"
        "    exclude_converted: true\n",
    )


def rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_table_is_written(run):
    for file in OVERVIEW_TABLES.values():
        assert rows(run / file), file


def test_flow_counts_are_the_runs_rows(run):
    summary = {r["analysis"]: r for r in rows(run / "summary.csv")}
    flow = rows(run / OVERVIEW_TABLES["prisma_flow"])
    for name in ("los_md", "los_smd"):
        mine = {r["stage"]: int(r["rows"]) for r in flow if r["analysis"] == name and r["reason"] in ("", )}
        effects = rows(run / name / "effects.csv")
        assert mine["sheet rows"] == 9 == mine["rows for the question"]  # dat.normand1999 has nine rows
        assert mine["pooled"] == int(summary[name]["k"]) == sum(r["included"] == "True" for r in effects)
    roles = {r["analysis"]: r["role"] for r in flow}
    assert roles == {"los_md": "primary", "los_smd": "reported"}  # one question (same sheet and where)


def test_summary_of_findings_and_sensitivity_rows_are_the_primary_fit(run):
    summary = {r["analysis"]: r for r in rows(run / "summary.csv")}
    (sof,) = rows(run / OVERVIEW_TABLES["sof"])
    assert sof["analysis"] == "los_md" and sof["question"] == "length_of_stay"
    assert float(sof["estimate"]) == float(summary["los_md"]["estimate"])
    assert float(sof["ci_low"]) == float(summary["los_md"]["ci_low"])
    sensitivity = rows(run / OVERVIEW_TABLES["sensitivity"])
    assert sensitivity[0]["question"] == "length_of_stay" and sensitivity[0]["label"] == "primary"
    assert float(sensitivity[0]["estimate"]) == float(summary["los_md"]["estimate"])
    reported = next(r for r in sensitivity if r["analysis"] == "los_smd")
    assert float(reported["estimate"]) == float(summary["los_smd"]["estimate"])


def test_characteristics_are_the_pooled_rows(run):
    table = rows(run / OVERVIEW_TABLES["characteristics"])
    effects = rows(run / "los_md" / "effects.csv")
    assert [r["line"] for r in table] == [r["line"] for r in effects if r["included"] == "True"]
    assert [r["n_cases"] for r in table] == [r["n_cases"] for r in effects if r["included"] == "True"]
    assert {r["unit"] for r in table} == {"days"}


def test_the_page_has_the_prisma_section_with_the_configs_words_only(run):
    page = (run / "report.html").read_text()
    section = page[page.index('<section id="prisma">'):page.index('<section id="methods">')]
    assert html.escape(ELIGIBILITY, quote=False) in section and "<b>as in</b>" not in section  # escaped, as given
    for key in ("sources", "selection", "extraction"):  # not given: said, never supplied
        assert f"the config gives no <code>prisma.{key}</code>" in section
    assert 'href="#prisma"' in page
    assert "Flow of rows (PRISMA 2020-style): length_of_stay" in section
    assert "9 sheet rows in sheet.csv" in section
    # the methods name each analysis's own settings
    assert "The raw mean difference m1 − m2" in section and "only rows that report means and SDs" in section


def test_a_long_characteristics_table_is_named_by_its_file_not_listed(run):
    """Beyond max_rows pooled rows (SECTION_MAX_ROWS, 200, as the sections' study tables) the page names
    study_characteristics.csv instead of listing the rows: at k = 10,000 the listed table made the report job take
    98 s and the page 14.5 MB (issue 22's k = 10,000 run)."""
    from metarepro.jobs.prisma import Frame, Question
    from metarepro.present.prisma import prisma_section

    table = pd.read_csv(run / "study_characteristics.csv")
    question = Question("length_of_stay", "los_md", None, table, "a few", svg="")
    listed = str(prisma_section(Frame([], [], [question], []), max_rows=len(table)))
    cut = str(prisma_section(Frame([], [], [question], []), max_rows=len(table) - 1))
    assert 'class="characteristics"' in listed and "not listed here" not in listed
    assert 'class="characteristics"' not in cut
    assert (f"The {len(table):,} pooled rows and their characteristics are not listed here (more than "
            f"{len(table) - 1:,} rows): they are in study_characteristics.csv.") in cut
