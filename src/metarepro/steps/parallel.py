"""Run a job's independent drawing tasks in forked processes, as many as the job's threads.

A figure is single-threaded matplotlib work; the report job's overview figures are independent of each other,
so with two threads it draws half of them in a forked copy of itself (nothing is imported or read again).
"""

from __future__ import annotations

import os
import pickle
import sys


def forked_map(tasks, workers: int = 1) -> list:
    """The results of ``tasks`` (callables without arguments), in order. Task i runs in worker i % workers:
    worker 0 is this process, the others are forked from it (POSIX; elsewhere, or with one worker, all run
    here). A task's exception is raised here, after every worker has ended."""
    tasks = list(tasks)
    workers = min(workers, len(tasks)) if hasattr(os, "fork") else 1
    if workers <= 1:
        return [task() for task in tasks]
    sys.stdout.flush()
    sys.stderr.flush()  # else text buffered before the fork would be written by every process
    children = [_fork(tasks, worker, workers) for worker in range(1, workers)]
    results, failure = [None] * len(tasks), None
    try:
        for i in range(0, len(tasks), workers):
            results[i] = tasks[i]()
    except BaseException as err:  # the children are still reaped below
        failure = err
    for pid, read in children:
        with os.fdopen(read, "rb") as pipe:
            payload = pipe.read()
        os.waitpid(pid, 0)
        done, value = pickle.loads(payload) if payload else (False, RuntimeError("a forked worker died"))
        if not done:
            failure = failure or value
            continue
        for i, result in value:
            results[i] = result
    if failure is not None:
        raise failure
    return results


def _fork(tasks, worker, workers) -> tuple[int, int]:
    read, write = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write)
        return pid, read
    os.close(read)  # the child: its share of the tasks, the results down the pipe, then leave at once
    try:
        payload = pickle.dumps((True, [(i, tasks[i]()) for i in range(worker, len(tasks), workers)]))
    except BaseException as err:
        try:
            payload = pickle.dumps((False, err))
        except Exception:
            payload = pickle.dumps((False, RuntimeError(f"{type(err).__name__}: {err}")))
    with os.fdopen(write, "wb") as pipe:
        pipe.write(payload)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
