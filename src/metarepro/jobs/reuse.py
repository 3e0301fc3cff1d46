"""An analysis's files kept beside its folder, so that a job rerun for another analysis copies them back.

One analysis job runs a block of analyses (config ``analyses_per_job``). Snakemake reruns the whole block when
any member changes or one is added to it, and deletes every file of the block first; without this module each
unchanged member would be computed again (bench_pipeline.py: adding one analysis took 7.3 s instead of 4.7).
So each analysis keeps a copy of its files in ``.snakemake/metarepro-reuse/<its folder>/`` (beside Snakemake's own
records of the run, outside the results) with the key they were made from: the SHA-256 of

- the bytes of every file the analysis reads (its sheet, its compare_studies sheet),
- its settings (the config entry, the config's defaults) and the figure formats,
- the bytes of metarepro's own code (every file of the installed package), and
- the versions of Python and of each library that computes, writes or draws (:data:`LIBRARIES`).

An unchanged member is copied back only when that key is equal, so its files are the bytes a recomputation gives
(the pipeline is deterministic; CI reruns the default config with ``reuse_unchanged: false`` and checks that every
file is byte-identical), and get a new modification time, as files a job writes do. Its log is the log of the run
that made them, and then says that they were reused and from where. This holds for a forced rerun
(``--forceall``) too: config ``reuse_unchanged: false`` (or deleting ``.snakemake/metarepro-reuse``) makes every job
compute every member. Analyses whose files exceed :data:`REUSE_MAX_BYTES` are not kept.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from functools import lru_cache
from pathlib import Path

REUSE_FOLDER = Path(".snakemake") / "metarepro-reuse"
# Above this, a kept copy doubles much disk (k = 10^6 writes 370 MB of effects.csv) to save a recomputation of a
# size that is rarely a block mate of small analyses.
REUSE_MAX_BYTES = 256 * 2**20
KEY_FILE = "key.sha256"
LOG_FILE = "job.log"
# what computes, writes or draws an analysis's files besides metarepro itself
LIBRARIES = ("numpy", "scipy", "pandas", "matplotlib", "statsmodels", "numba", "jinja2")

__all__ = ["REUSE_FOLDER", "analysis_key", "restore", "run_or_reuse", "store"]


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 over the path and bytes of every file of the metarepro package (code, schemas, templates) and the
    versions of Python and :data:`LIBRARIES`."""
    from importlib.metadata import PackageNotFoundError, version

    import metarepro

    root = Path(metarepro.__file__).parent
    digest = hashlib.sha256(sys.version.encode())
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    for library in LIBRARIES:
        try:
            digest.update(f"{library}=={version(library)}\0".encode())
        except PackageNotFoundError:
            digest.update(f"{library} absent\0".encode())
    return digest.hexdigest()


def analysis_key(inputs, settings: dict, formats) -> str:
    """The key of an analysis's files: its input files' bytes, settings, figure formats and the code that ran."""
    from metarepro.jobs.files import file_sha256

    parts = {
        "inputs": [file_sha256(path) for path in inputs],
        "settings": settings,
        "formats": list(formats),
        "code": code_fingerprint(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _kept(folder: Path) -> Path:
    """Where an analysis folder's copy is kept: its path under REUSE_FOLDER (in the working directory), or a hash
    of its absolute path for a folder outside it (config allow_results_outside_workdir)."""
    absolute = folder.resolve()
    try:
        return REUSE_FOLDER / absolute.relative_to(Path.cwd().resolve())
    except ValueError:
        return REUSE_FOLDER / "outside" / hashlib.sha256(str(absolute).encode()).hexdigest()[:16]


def restore(folder, files, key: str) -> str | None:
    """Copy an analysis's kept files into ``folder`` when they were made under ``key``; return the log of the run
    that made them (None, and nothing copied, when there is no such copy)."""
    folder = Path(folder)
    kept = _kept(folder)
    key_path = kept / KEY_FILE
    if not key_path.is_file() or key_path.read_text() != key or not all((kept / f).is_file() for f in files):
        return None
    folder.mkdir(parents=True, exist_ok=True)
    for file in files:
        shutil.copyfile(kept / file, folder / file)
    return (kept / LOG_FILE).read_text() if (kept / LOG_FILE).is_file() else ""


def store(folder, files, key: str, log_text: str) -> bool:
    """Keep a copy of an analysis's files and log under ``key`` (the key is written last: a copy cut short by a
    crash has no key and is never restored); False, and nothing kept, above :data:`REUSE_MAX_BYTES`."""
    folder = Path(folder)
    kept = _kept(folder)
    if kept.exists():
        shutil.rmtree(kept)
    if sum((folder / file).stat().st_size for file in files) > REUSE_MAX_BYTES:
        return False
    kept.mkdir(parents=True)
    for file in files:
        shutil.copyfile(folder / file, kept / file)
    (kept / LOG_FILE).write_text(log_text)
    (kept / KEY_FILE).write_text(key)
    return True


def run_or_reuse(sheet, settings: dict, folder, formats, log_path, reuse: bool = True) -> bool:
    """One analysis of a workflow job (:func:`metarepro.jobs.run.analysis_job`, its messages in ``log_path``), or,
    with ``reuse`` and a kept copy made from the same key, that copy; True when the copy was used."""
    from metarepro.jobs.files import logged
    from metarepro.jobs.outputs import analysis_files, analysis_inputs
    from metarepro.jobs.run import analysis_job

    analysis = settings["analysis"]
    files = analysis_files(analysis, formats)
    inputs = [sheet, *analysis_inputs(analysis)[1:]]  # the sheet as the rule gives it, then the others
    key = analysis_key(inputs, settings, formats) if reuse else None
    log_text = restore(folder, files, key) if key else None
    if log_text is not None:
        read = ", ".join(map(str, inputs))
        note = (f"metarepro: {settings['name']} unchanged (the same bytes of {read}, settings, figure formats and "
                f"code as when its files were made): its files were copied from {_kept(Path(folder))}; config "
                "reuse_unchanged: false computes them again\n")  # fmt: skip
        Path(log_path).write_text(log_text + note)
        return True
    with logged(log_path):
        analysis_job(sheet, settings, folder, formats)
    # kept only when the inputs are still the bytes the key was made from (check_sheet_unchanged saw the sheet)
    if key and analysis_key(inputs, settings, formats) == key:
        store(folder, files, key, Path(log_path).read_text())
    return False
