"""forked_map: a job's independent tasks in forked processes, results in order, failures raised in the job."""

import os

import pytest

from metarepro.jobs import parallel
from metarepro.jobs.parallel import forked_map

pytestmark = pytest.mark.skipif(not parallel.CAN_FORK, reason="forked workers are used on Linux only")


def test_results_come_back_in_order_from_every_worker():
    tasks = [lambda i=i: (i * i, os.getpid()) for i in range(7)]
    results = forked_map(tasks, workers=3)
    assert [square for square, _ in results] == [i * i for i in range(7)]
    pids = [pid for _, pid in results]
    assert pids[0::3] == [os.getpid()] * 3  # worker 0 is this process
    assert len(set(pids[1::3])) == 1 and len(set(pids[2::3])) == 1
    assert len(set(pids)) == 3  # tasks 1, 4 and 2, 5 each ran in a process of their own


def test_one_worker_runs_everything_here():
    assert forked_map([os.getpid, os.getpid], workers=1) == [os.getpid()] * 2
    assert forked_map([], workers=2) == []


def test_a_forked_task_that_fails_raises_its_own_exception_here():
    def bad():
        raise ValueError("row 3 of the atlas")

    with pytest.raises(ValueError, match="row 3 of the atlas") as raised:
        forked_map([lambda: 1, bad, lambda: 3], workers=2)  # bad is task 1: worker 1, a child
    assert "in a forked worker" in raised.value.__notes__[0] and "in bad" in raised.value.__notes__[0]


def test_a_failure_here_still_waits_for_the_children():
    def bad():
        raise KeyError("here")

    with pytest.raises(KeyError, match="here"):
        forked_map([bad, lambda: 2], workers=2)
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # no child left behind


def test_an_exception_that_cannot_be_pickled_is_still_reported():
    class Local(Exception):  # a local class: pickle cannot find it
        pass

    def bad():
        raise Local("not picklable")

    with pytest.raises(RuntimeError, match="Local: not picklable"):
        forked_map([lambda: 1, bad], workers=2)


def test_an_exception_that_pickles_but_does_not_load_is_reported_and_every_child_reaped():
    class TwoArguments(Exception):
        def __init__(self, a, b):
            super().__init__(f"{a} and {b}")

    TwoArguments.__module__, TwoArguments.__qualname__ = __name__, "TwoArguments"
    globals()["TwoArguments"] = TwoArguments  # findable, so it pickles; loading calls __init__ with one argument

    def bad():
        raise TwoArguments(1, 2)

    with pytest.raises(RuntimeError, match="TwoArguments: 1 and 2"):
        forked_map([lambda: 0, bad, lambda: 2, lambda: 3], workers=4)
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def test_a_fork_that_fails_runs_that_share_here(monkeypatch):
    def no_fork():
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(parallel.os, "fork", no_fork)
    results = forked_map([lambda i=i: (i, os.getpid()) for i in range(4)], workers=2)
    assert results == [(i, os.getpid()) for i in range(4)]  # all four, in order, in this process
