"""Whole batches side by side: a job of several batches runs on N workers, each a one-thread
instance of the engine, each taking the next batch as it frees up.

On a few cores, splitting one batch's work across threads leaves the many small per-row ops
(layer norms, GELU, the per-token int8 scales, attention on short rows) waiting on thread
hand-offs; one batch per core keeps every core busy instead. A text's numbers do not depend on
the worker that ran it: the kernels of both engines split work by rows and columns, never along
a sum, so one thread computes the same bits as several (tests/runtime/test_parallel.py checks
it bit for bit against the multi-thread engine, alone and in batches).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

Job = TypeVar("Job")
Runner = Callable[[dict], Any]


class SideBySide:
    """Runs jobs on `workers` runners made on first use by `make_runners(workers)`, one thread each.

    The runners are built lazily, so a process that only ever classifies one batch at a time
    (a server answering single texts, a cold Lambda) never pays for them."""

    def __init__(self, make_runners: Callable[[int], Sequence[Runner]], workers: int):
        self.workers = workers
        self._make_runners = make_runners
        self._runners: Sequence[Runner] | None = None
        self._pool: ThreadPoolExecutor | None = None
        # one job at a time: an OpenVINO infer request must not run twice at once, and two jobs
        # side by side would only share the same cores
        self._lock = threading.Lock()

    def map(self, work: Callable[[Runner, Job], Any], jobs: Sequence[Job]) -> list[Any]:
        """[work(runner, job) for job in jobs], computed side by side; results in job order. The
        first exception raised by any job is re-raised once every worker has stopped."""
        with self._lock:
            if self._runners is None:
                self._runners = list(self._make_runners(self.workers))
                self._pool = ThreadPoolExecutor(len(self._runners), thread_name_prefix="emotion-onnx-batch")
            results: list[Any] = [None] * len(jobs)
            counter = itertools.count()  # next() on it is atomic: each job goes to exactly one worker
            failed: list[BaseException] = []

            def drain(runner: Runner) -> None:
                while not failed:
                    i = next(counter)
                    if i >= len(jobs):
                        return
                    try:
                        results[i] = work(runner, jobs[i])
                    except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                        failed.append(exc)

            for future in [self._pool.submit(drain, r) for r in self._runners]:
                future.result()
            if failed:
                raise failed[0]
            return results
