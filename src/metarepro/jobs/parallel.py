"""Run a job's independent drawing tasks in forked processes, as many as the job's threads.

A figure is single-threaded matplotlib work; the report job's overview figures are independent of each other,
so with two threads it draws half of them in a forked copy of itself (nothing is imported or read again).
Forking is used on Linux only: macOS system libraries are not safe to use in a forked child.
"""

from __future__ import annotations

import os
import pickle
import sys
import traceback

CAN_FORK = sys.platform.startswith("linux")


def forked_map(tasks, workers: int = 1) -> list:
    """The results of ``tasks`` (callables without arguments), in order. Task i runs in worker i % workers:
    worker 0 is this process, the others are forked from it (Linux; elsewhere, with one worker, or when a fork
    fails, the tasks run here). A task's exception is raised here, with the worker's traceback as a note, after
    every worker has ended."""
    tasks = list(tasks)
    workers = min(workers, len(tasks)) if CAN_FORK else 1
    if workers <= 1:
        return [task() for task in tasks]
    sys.stdout.flush()
    sys.stderr.flush()  # else text buffered before the fork would be written by every process
    children, local = {}, [0]  # forked worker -> (pid, pipe); the workers this process runs
    for worker in range(1, workers):
        try:
            children[worker] = _fork(tasks, worker, workers)
        except OSError:  # no process to spare (e.g. a memory limit): this process does that share too
            local.append(worker)
    results, failure = [None] * len(tasks), None
    try:
        for i in sorted(i for worker in local for i in range(worker, len(tasks), workers)):
            results[i] = tasks[i]()
    except BaseException as err:  # the children are still reaped below
        failure = err
    for pid, read in children.values():
        try:
            with os.fdopen(read, "rb") as pipe:
                payload = pipe.read()
            done, value = pickle.loads(payload) if payload else (False, RuntimeError("a forked worker died"))
        except Exception as err:  # noqa: BLE001 (a result that does not unpickle is that worker's failure)
            done, value = False, RuntimeError(f"a forked worker's result could not be read: {err!r}")
        finally:
            os.waitpid(pid, 0)
        if done:
            for i, result in value:
                results[i] = result
        elif failure is None:
            failure = value
    if failure is not None:
        raise failure
    return results


def _fork(tasks, worker, workers) -> tuple[int, int]:
    read, write = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read)
        os.close(write)
        raise
    if pid:
        os.close(write)
        return pid, read
    os.close(read)  # the child: its share of the tasks, the results down the pipe, then leave at once
    try:
        payload = pickle.dumps((True, [(i, tasks[i]()) for i in range(worker, len(tasks), workers)]))
    except BaseException as err:
        payload = _failure(err)
    with os.fdopen(write, "wb") as pipe:
        pipe.write(payload)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _failure(err: BaseException) -> bytes:
    """The exception for the parent, with this worker's traceback as a note (a pickled exception carries none);
    a RuntimeError naming it if it does not survive pickling."""
    note = f"in a forked worker (pid {os.getpid()}):\n{traceback.format_exc()}"
    try:
        err.add_note(note)
        payload = pickle.dumps((False, err))
        pickle.loads(payload)  # an exception class with extra __init__ arguments pickles but does not load
        return payload
    except Exception:  # noqa: BLE001
        return pickle.dumps((False, RuntimeError(f"{type(err).__name__}: {err}\n{note}")))
