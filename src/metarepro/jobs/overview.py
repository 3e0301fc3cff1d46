"""Steps over all analyses: the summary table, published vs reproduced, the HTML report and its provenance."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pandas as pd

from metarepro.inputs.published import read_published
from metarepro.jobs.files import check_sheet_unchanged, file_sha256, read_effects, read_json, read_table
from metarepro.jobs.parallel import forked_map
from metarepro.pipeline.reproduction import reproduction_table


def reproduction(published_path, compare: dict, names, records) -> pd.DataFrame:
    """The reproduction table for the analyses that name published results (config ``compare_with``); ``records``:
    each analysis's pooled.json record."""
    ours = dict(zip(names, records, strict=True))
    if not published_path or not compare:
        return pd.DataFrame(columns=["analysis", "published_id"])
    return reproduction_table(ours, read_published(published_path), compare)


def summary_table(names, records) -> pd.DataFrame:
    """One row per analysis with its primary fit (``records``: each analysis's
    :class:`~metarepro.pipeline.record.PooledRecord`, or pooled.json's dict)."""
    rows = [{"analysis": name, **_as_dict(record)} for name, record in zip(names, records, strict=True)]
    # the sheet's sha256 is provenance (the report shows it) and the pooled studies' years are for the reproduction
    # table: neither is a result of its own
    return pd.DataFrame.from_records(rows).drop(columns=["sheet_sha256", "study_years"], errors="ignore")


def _as_dict(record) -> dict:
    return record.to_dict() if hasattr(record, "to_dict") else dict(record)


# The tables an analysis's report section shows (in the order its job writes them).
REPORT_TABLES = ("subgroups", "metareg", "influence", "study_level")
PACKAGES = ("numpy", "scipy", "pandas", "statsmodels", "matplotlib", "snakemake")


def provenance(config_files=(), sheets=(), repo_dir=None, read=None) -> dict:
    """Versions of metarepro (and its git commit, when run from a checkout), Python and key packages, and the
    sha256 of every config file and input sheet. ``read``: for the analyses that recorded it (pooled.json's
    ``sheet_sha256``), the sheet's path and the sha256 of the bytes each read; a sheet whose file no longer holds
    those bytes is a SheetError, so the shown sha256 is that of the bytes every analysis read."""
    import platform
    import subprocess
    from importlib import metadata

    from metarepro import __version__

    software = {"metarepro": __version__}
    if repo_dir is not None:
        try:
            commit = subprocess.run(["git", "-C", str(repo_dir), "rev-parse", "HEAD"], capture_output=True,
                                    text=True, timeout=10, check=True).stdout.strip()  # fmt: skip
            dirty = subprocess.run(["git", "-C", str(repo_dir), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10).stdout.strip()  # fmt: skip
            software["metarepro git commit"] = commit + (" (with uncommitted changes)" if dirty else "")
        except (OSError, subprocess.SubprocessError):
            pass  # not a git checkout (an installed package): the version says it
    software["Python"] = platform.python_version()
    for name in PACKAGES:
        try:
            software[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    for name, (sheet, read_sha256) in (read or {}).items():
        check_sheet_unchanged(sheet, read_sha256, f"after analysis {name} read it")
    files = {_shown(p): file_sha256(p) for p in [*config_files, *sheets]}
    return {"software": software, "files": files}


def _shown(path) -> str:
    """A file as the reader names it: relative to the working directory when inside it (Snakemake makes a
    --configfile absolute), so the same run from another folder gives the same report."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve())) if path.is_absolute() else str(path)
    except ValueError:
        return str(path)


def _svg(plot, *args, **kwargs) -> str:
    """The SVG text of ``plot(*args, **kwargs)`` (a task of :func:`~metarepro.jobs.parallel.forked_map`)."""
    from metarepro.present.plots.style import svg_text

    return svg_text(plot(*args, **kwargs))


def read_section(name, analysis: dict, folder, files):
    """One analysis's :class:`~metarepro.present.report.AnalysisSection` from the files :func:`steps.run.analysis_job`
    wrote into ``folder`` (``files``: their names, in the order the section shows the figures): what the job rendered
    from its objects, read back (the tests check that the two render the same section)."""
    from metarepro.present.report import AnalysisSection

    folder = Path(folder)
    paths = [folder / file for file in files]
    return AnalysisSection(
        name, analysis.get("title", name), read_json(folder / "pooled.json"), read_effects(folder / "effects.csv"),
        (folder / "forest.svg").read_text(), config=analysis, estimators=read_table(folder / "estimators.csv"),
        bias=read_json(folder / "bias.json") if (folder / "bias.json").exists() else None,
        tables={p.stem: read_table(p) for p in paths if p.stem in REPORT_TABLES and p.suffix == ".csv"},
        figures={p.stem: p.read_text() for p in paths if p.suffix == ".svg" and p.stem != "forest"},
        script=f"{name}/metafor.R" if "metafor.R" in files else "",  # the page lies beside the analyses' folders
    )  # fmt: skip


def write_section(section, out) -> None:
    """The analysis's section of the report (HTML; ``section``: its
    :class:`~metarepro.present.report.AnalysisSection`) into ``out``, rendered by its own job, so that the report job
    only puts the sections together (adding an analysis re-renders one section, not all)."""
    from metarepro.present.report import analysis_section

    Path(out).write_text(analysis_section(section))


def data_summary(analyses: dict) -> list[dict]:
    """Per sheet the analyses read: its rows, samples (distinct study_id), sources (distinct source_url, else doi,
    else pmid) and markers, counted from the file as written (the header and cells only; no statistics)."""
    from metarepro.inputs.sheet import read_table

    out = []
    for path in dict.fromkeys(analysis["data"] for analysis in analyses.values()):
        header, rows, _, _ = read_table(path)
        column = {name: header.index(name) for name in header}

        def cells(name, rows=rows, column=column):
            return [row[column[name]] for row in rows] if name in column else [""] * len(rows)

        sources = [u or d or m for u, d, m in zip(cells("source_url"), cells("doi"), cells("pmid"), strict=True)]
        out.append({"sheet": str(path), "rows": len(rows), "samples": len(set(cells("study_id"))),
                    "sources": len({s for s in sources if s}), "markers": sorted({m for m in cells("marker") if m})})
    return out


def study_level_sentences(paths, analyses: dict, records: dict) -> list[tuple[str, str]]:
    """(analysis, one sentence with its study-level counts) for each ``study_level.csv`` (in its analysis's folder)."""
    from metarepro.pipeline.study_level import study_counts, summary_sentence

    out = []
    for path in paths:
        name = Path(path).parent.name
        spec = analyses[name]["compare_studies"]
        counts = study_counts(read_table(path))
        published = spec.get("published_id") or spec["sheet"]
        out.append((name, summary_sentence(counts, records[name]["measure"], published)))
    return out


def build_report(names, analyses: dict, inputs: dict, reproduction_path=None, config_files=(), sheets=(), *,
                 repo_dir=None, labels=None, workers=1, data_note="", study_levels=(),
                 records=None, prisma=None, tables_out=None) -> str:  # fmt: skip
    """The HTML report from the workflow's files. ``inputs`` holds, per kind, one path per analysis
    (:data:`metarepro.jobs.outputs.REPORT_INPUTS`): ``pooled`` (pooled.json, unless ``records`` gives them as
    read), ``effects`` (effects.csv: the headline counts flagged rows), ``bias`` and ``section`` (the section the
    analysis's job rendered), so nothing depends on where the results live. The overview figures are drawn by
    ``workers`` processes (:func:`~metarepro.jobs.parallel.forked_map`). ``prisma``: the config's ``prisma`` texts
    (the page's PRISMA section, :mod:`metarepro.jobs.prisma`); ``tables_out``: the paths of the page's tables to
    write (kind -> path, :data:`metarepro.jobs.outputs.OVERVIEW_TABLES`)."""
    from metarepro.present.plots import overview
    from metarepro.present.plots.flow import flow_plot
    from metarepro.present.plots.traffic_light import traffic_light_plot
    from metarepro.present.report import AnalysisSection, render_report

    sections, records_by_name, bodies, read = [], {}, [], {}
    for i, name in enumerate(names):
        record = records_by_name[name] = read_json(inputs["pooled"][i]) if records is None else records[i]
        sections.append(AnalysisSection(name, analyses[name].get("title", name), _as_dict(record),
                                        read_effects(inputs["effects"][i]), "", config=analyses[name],
                                        bias=read_json(inputs["bias"][i])))  # fmt: skip
        bodies.append(Path(inputs["section"][i]).read_text())
        if record.get("sheet_sha256"):  # absent in results of an older metarepro
            read[name] = (analyses[name]["data"], record["sheet_sha256"])
    titles = {name: analyses[name].get("title", name) for name in names}
    found, lights = _findings(names, analyses, inputs, records_by_name, sections, labels or {})
    frame = _prisma(names, analyses, sections, prisma, found, tables_out)
    table = read_table(reproduction_path) if reproduction_path else None
    plots, compared = [], []  # (plot, rows, key, the panel's labels, the title's words for its groups)
    for own, members in _by_own_labels(names, analyses).items():
        panel, groups = {**(labels or {}), **dict(own)}, (f" ({dict(own)['cases']} vs {dict(own)['controls']})"
                                                          if {"cases", "controls"} <= dict(own).keys() else "")
        atlas = overview.atlas_rows({n: records_by_name[n] for n in members}, titles)
        plots += [(overview.atlas_plot, rows, key, panel, groups) for key, rows in atlas.items()]
        pairs = table[table["analysis"].isin(members)] if table is not None and "analysis" in table else None
        compared += [(overview.reproduction_plot, rows, key, panel, groups)
                     for key, rows in overview.reproduction_rows(pairs, titles).items()]  # fmt: skip
    n_atlas = len(plots)
    plots += compared
    # every figure of the page in one set of tasks, spread over the workers: the panels, each question's traffic
    # light and PRISMA flow diagram
    drawn = forked_map([*(partial(_svg, plot, rows, key, labels=panel) for plot, rows, key, panel, _ in plots),
                        *(partial(_svg, traffic_light_plot, judgements) for judgements in lights.values()),
                        *(partial(_svg, flow_plot, q.flow) for q in frame.questions)], workers)  # fmt: skip
    svgs, drawn = drawn[:len(plots)], drawn[len(plots):]
    found.figures.update(zip(lights, drawn[:len(lights)], strict=True))
    for q, svg in zip(frame.questions, drawn[len(lights):], strict=True):
        q.svg = svg
    # each with its title, the figure's accessible name on the page
    titled = [(f"{'Pooled estimates' if i < n_atlas else 'Published vs reproduced'}: {overview.scale_heading(key)}"
               f"{groups}", svg) for i, ((_, _, key, _, groups), svg) in enumerate(zip(plots, svgs, strict=True))]
    atlas, repro = titled[:n_atlas], titled[n_atlas:]
    return render_report(sections, table, atlas_svgs=atlas, reproduction_svgs=repro, labels=labels or {},
                         provenance=provenance(config_files, sheets, repo_dir, read), bodies=bodies,
                         data=(data_summary({name: analyses[name] for name in names}), data_note),
                         study_sentences=study_level_sentences(study_levels, analyses, records_by_name),
                         findings=found, prisma=frame)  # fmt: skip


def _by_own_labels(names, analyses) -> dict[tuple, list[str]]:
    """The analyses grouped by the labels they give themselves (none: the config's defaults), in config order: an
    atlas panel's axis words ("higher in MDD", "favours placebo") must hold for every row it draws."""
    groups: dict[tuple, list[str]] = {}
    for name in names:
        groups.setdefault(tuple(sorted((analyses[name].get("labels") or {}).items())), []).append(name)
    return groups


def _prisma(names, analyses, sections, texts, found, tables_out):
    """The page's PRISMA frame (:func:`metarepro.jobs.prisma.prisma_frame`, its flow diagrams drawn) and the page's
    tables written to ``tables_out``. Each sheet the analyses read is read once here (the report job has them among
    its inputs)."""
    from metarepro.jobs import prisma as pj

    frame = pj.prisma_frame(names, analyses, sections, texts)
    pj.write_tables({**frame.tables, **pj.findings_tables(found)}, tables_out or {})
    return frame


def _findings(names, analyses, inputs, records, sections, labels):
    """The summary of findings, each question's sensitivity summary and reporter sentences
    (:mod:`metarepro.jobs.findings`), and per question the judgements its primary analysis's quality flags give
    (analysis -> judgements: the traffic lights to draw)."""
    from metarepro.jobs.findings import findings_from_records
    from metarepro.pipeline.findings import AnalysisRecords, flag_judgements

    by_name = {}
    for i, (name, section) in enumerate(zip(names, sections, strict=True)):
        by_name[name] = AnalysisRecords(name, _as_dict(records[name]), section.bias, section.effects,
                                        read_table(inputs["estimators"][i]), read_effects(inputs["leave1out"][i]),
                                        read_effects(inputs["influence"][i]))  # fmt: skip
    found = findings_from_records(analyses, by_name, labels=labels)
    lights = {}
    for row in found.sof_rows:
        effects = by_name[row.analysis].effects
        if "flags" in effects and effects["included"].astype(bool).any():
            lights[row.analysis] = flag_judgements(effects)
    return found, lights
