"""How a workflow job's process ends (metarepro.jobs.end_job): its exit handlers run, its output is flushed,
and the interpreter's teardown is skipped."""

import os
import subprocess
import sys


def test_end_job_runs_the_exit_handlers_and_flushes(tmp_path):
    marker = tmp_path / "handler-ran"
    code = (
        "import atexit, sys\n"
        "from pathlib import Path\n"
        f"atexit.register(lambda: Path({str(marker)!r}).write_text('yes'))\n"
        "from metarepro.jobs import end_job\n"
        "print('written before the end', end='')\n"  # no newline: stays in the buffer until flushed
        "end_job()\n"
        "print('never reached')\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}  # a pipe is buffered
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "written before the end"
    assert marker.read_text() == "yes"
