"""The nightly job's areas on Dask distributed: a ``LocalCluster`` in the process, or a scheduler.

Ctrl-C while the areas run (``KeyboardInterrupt`` in the main thread) must end the job with the
CLI's one line, ``Interrupted.``, and nothing of the cluster's shutdown: no ``Task exception was
never retrieved`` traceback (an interrupted ``client.gather`` leaves such orphaned asyncio tasks:
the results are taken one future at a time instead), no warning about cancelled tasks (Dask's and
asyncio's loggers are silenced during that shutdown only), no 30 s wait for the running pairs
(the local worker is closed without waiting for its threads), and no crash at exit: a local
cluster's pairs run in this process's threads, and go on once the night is given up. With their
client gone, they fail at their next Dask computation; :func:`compute` waits for them (up to
:data:`STOP_WAIT_S`, or a second Ctrl-C), and their failure is not reported
(:func:`abandoned`). What they left in their work folders is a killed run's, which the next run
redoes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: how long an interrupted night waits for its local pairs to stop, in seconds
STOP_WAIT_S = 60.0


class _LocalDask:
    depth = 0
    saved: Any = None


_LOCAL = _LocalDask()
_LOCAL_LOCK = threading.Lock()
#: the interrupted runs (``task["run"]``), whose pairs may still run on in this process's threads
_ABANDONED: set[str] = set()
#: how many tasks of each run are running in this process
_RUNNING: dict[str, int] = {}
_RUNNING_CHANGED = threading.Condition()


@contextmanager
def local_dask() -> Iterator[None]:
    """Inside a Dask task: compute the chain's own arrays on local threads, not on the cluster.

    ``dask.config`` is process-global, so concurrent tasks share one reference-counted
    setting (a plain ``dask.config.set`` per task would be undone by the first to finish).
    """
    import dask

    with _LOCAL_LOCK:
        if _LOCAL.depth == 0:
            _LOCAL.saved = dask.config.get("scheduler", None)
            dask.config.set(scheduler="threads")
        _LOCAL.depth += 1
    try:
        yield
    finally:
        with _LOCAL_LOCK:
            _LOCAL.depth -= 1
            # unless the client has since closed and restored its own setting (an interrupted night):
            # the saved "dask.distributed" would then leave the process without a usable scheduler
            if _LOCAL.depth == 0 and dask.config.get("scheduler", None) == "threads":
                dask.config.set(scheduler=_LOCAL.saved)


@contextmanager
def running(task: dict[str, Any]) -> Iterator[None]:
    """Count ``task`` as running in this process while the block runs (:func:`compute` waits for it)."""
    run = task.get("run")
    with _RUNNING_CHANGED:
        _RUNNING[str(run)] = _RUNNING.get(str(run), 0) + 1
    try:
        yield
    finally:
        with _RUNNING_CHANGED:
            _RUNNING[str(run)] -= 1
            if not _RUNNING[str(run)]:
                del _RUNNING[str(run)]
            _RUNNING_CHANGED.notify_all()


def abandoned(task: dict[str, Any]) -> bool:
    """Whether ``task``'s night was given up by Ctrl-C while it ran (its failure is not news)."""
    return task.get("run") in _ABANDONED


def compute(fn: Callable[[dict[str, Any]], dict[str, Any]], tasks: list[dict[str, Any]], *,
            scheduler: str | None, workers: int | None) -> list[dict[str, Any]]:
    """``fn`` of each task on Dask distributed; results in the order of ``tasks``.

    Each task gets the key ``"run"``, this call's id (:func:`running`, :func:`abandoned`).
    """
    if not tasks:
        return []
    from dask.distributed import Client, LocalCluster

    if not logging.getLogger("changedetect.nightly").isEnabledFor(logging.DEBUG):  # start-up chatter is no news
        logging.getLogger("distributed").setLevel(logging.WARNING)
    run = uuid.uuid4().hex
    tasks = [{**task, "run": run} for task in tasks]
    with _quiet_when_interrupted() as interrupted:
        if scheduler:
            with Client(scheduler, timeout="30s") as client:
                try:
                    return _results(client, fn, tasks)
                except KeyboardInterrupt:
                    interrupted()
                    raise
        n = workers or min(2, len(tasks))
        try:
            with LocalCluster(n_workers=1, threads_per_worker=n, processes=False, dashboard_address="127.0.0.1:0",
                              worker_dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
                try:
                    return _results(client, fn, tasks)
                except KeyboardInterrupt:
                    interrupted()
                    _ABANDONED.add(run)
                    for worker in list(cluster.workers.values()):  # not its default 30 s wait for the pairs
                        with contextlib.suppress(Exception):
                            cluster.sync(worker.close, executor_wait=False, reason="interrupted")
                    raise
        except KeyboardInterrupt:
            if run in _ABANDONED:  # the client is gone: the pairs fail at their next computation
                with _RUNNING_CHANGED:
                    _RUNNING_CHANGED.wait_for(lambda: not _RUNNING.get(run), timeout=STOP_WAIT_S)
            raise


def _results(client: Any, fn: Callable[[dict[str, Any]], dict[str, Any]],
             tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tasks' results, in order: one future at a time, not ``client.gather`` (whose
    interruption leaves orphaned asyncio tasks that log tracebacks when the client closes)."""
    futures = client.map(fn, tasks, pure=False)
    return [future.result() for future in futures]


@contextmanager
def _quiet_when_interrupted() -> Iterator[Callable[[], None]]:
    """Until the block ends, once the function it yields is called: no log record of Dask's, asyncio's
    or tornado's (an interrupted cluster's shutdown). Nothing is silenced otherwise."""
    silenced: list[logging.Logger] = []

    def silence() -> None:
        names = {name for name in logging.root.manager.loggerDict
                 if name.split(".")[0] in ("distributed", "asyncio", "tornado")}
        for name in sorted(names | {"distributed", "asyncio", "tornado"}):
            logger = logging.getLogger(name)
            if not logger.disabled:
                logger.disabled = True
                silenced.append(logger)

    try:
        yield silence
    finally:
        for logger in silenced:
            logger.disabled = False
