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

A busy machine must not fail the night on Dask's own clocks. Dask gives a cluster and its client 30 s
(``distributed.comm.timeouts.connect``) to start and connect, and the client twice that to close;
on a city server whose cores are taken by other jobs, the cluster's event loop can wait longer than
that for the CPU, and the night used to end in a bare ``TimeoutError``. The night's own
``LocalCluster`` is given at least :data:`START_TIMEOUT_S` to start and connect (Dask's setting, set
for the cluster's lifetime only, or a longer one the user configured), and twice that to close. A
cluster that still does not start in time, or a ``--scheduler`` not reached within Dask's connect
timeout, is one :class:`ClusterTimeoutError` that says what to do, before anything is committed;
a close that times out once the night's results are in is a warning, and the night goes on.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from changedetect.errors import ClusterTimeoutError

log = logging.getLogger("changedetect.nightly")

#: how long an interrupted night waits for its local pairs to stop, in seconds
STOP_WAIT_S = 60.0
#: the least time the night's local cluster is given to start and its client to connect, in seconds
#: (Dask's ``distributed.comm.timeouts.connect``, 30 s by default, when the user set it longer); the
#: client is given twice that to close, as Dask does, and so is the cluster
START_TIMEOUT_S = 300.0
#: how the user gives Dask longer to connect (Dask reads it at import)
CONNECT_ENV = "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT"


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
    A cluster that does not start, or a scheduler not reached, in time is a
    :class:`ClusterTimeoutError` (:func:`_local_cluster`, :func:`_scheduler_client`).
    """
    if not tasks:
        return []
    import dask.distributed  # noqa: F401  (its first import sets its loggers' levels: before ours)

    if not logging.getLogger("changedetect.nightly").isEnabledFor(logging.DEBUG):  # start-up chatter is no news
        logging.getLogger("distributed").setLevel(logging.WARNING)
    run = uuid.uuid4().hex
    tasks = [{**task, "run": run} for task in tasks]
    with _quiet_when_interrupted() as interrupted:
        if scheduler:
            with _scheduler_client(scheduler) as client:
                try:
                    return _results(client, fn, tasks)
                except KeyboardInterrupt:
                    interrupted()
                    raise
        n = workers or min(2, len(tasks))
        try:
            with _local_cluster(n) as (cluster, client):
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


def disk_stop(exc: OSError) -> list[Any] | None:
    """``[errno, strerror, filename]`` of a write the disk stopped: full (ENOSPC, EDQUOT), or a file past the
    process's size limit (EFBIG; GDAL's exception does not say it, libtiff's line before it did); else None."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return [exc.errno, exc.strerror, exc.filename]
    from changedetect._libtiff import said

    return [errno.EFBIG, "File too large", exc.filename] if said("File too large") else None


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
        if silenced:  # the abandoned cluster's futures are collected later (at exit, on a busy machine: a close
            # that timed out), and asyncio then logs each 'exception was never retrieved' after the block
            logging.getLogger("asyncio").addFilter(_ORPHANS)


class _Orphans(logging.Filter):
    """Drops asyncio's 'Future/Task exception was never retrieved' records: after an interrupted night they are
    the abandoned cluster's (a TimeoutError of its close), printed after the CLI's one line 'Interrupted.'.
    Added once, on the first interruption; other asyncio records pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "exception was never retrieved" not in record.getMessage()


_ORPHANS = _Orphans()


def _connect_timeout() -> float:
    """Dask's connect timeout as configured, in seconds."""
    import dask
    from dask.utils import parse_timedelta

    return float(parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="seconds") or 0)


@contextmanager
def _local_cluster(threads: int) -> Iterator[tuple[Any, Any]]:
    """The night's ``LocalCluster`` (one in-process worker of ``threads`` threads, dashboards on free
    ports) and its client, under the night's timeouts (the module's docstring); closed at the end."""
    import dask
    from dask.distributed import Client, LocalCluster

    timeout = max(_connect_timeout(), START_TIMEOUT_S)
    with dask.config.set({"distributed.comm.timeouts.connect": f"{timeout:g}s"}):
        try:
            cluster = LocalCluster(n_workers=1, threads_per_worker=threads, processes=False,
                                   dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0")
        except Exception as exc:
            _raise_if_timed_out(exc, f"the night's Dask cluster (a LocalCluster in this process) did not start "
                                     f"within {timeout:g} s")
            raise
        ended = False
        try:
            try:
                client = Client(cluster, timeout=f"{timeout:g}s")
            except Exception as exc:
                _raise_if_timed_out(exc, f"the night's Dask client did not connect to its LocalCluster "
                                         f"within {timeout:g} s")
                raise
            try:
                yield cluster, client
                ended = True
            finally:
                _close(client.close, "client", 2 * timeout, warn=ended)
        finally:
            _close(cluster.close, "cluster", 2 * timeout, warn=ended)


@contextmanager
def _scheduler_client(scheduler: str) -> Iterator[Any]:
    """A client of the scheduler at ``scheduler``, within Dask's connect timeout (the user's to set)."""
    from dask.distributed import Client

    timeout = _connect_timeout()
    try:
        client = Client(scheduler, timeout=f"{timeout:g}s")
    except Exception as exc:
        _raise_if_timed_out(exc, f"could not connect to the Dask scheduler at {scheduler} within {timeout:g} s; "
                                 "check that it runs and that this machine reaches it")
        raise
    with client:
        yield client


def _close(close: Callable[..., Any], what: str, timeout: float, *, warn: bool) -> None:
    """``close(timeout=...)``; a timeout is a warning when the night's results are in (``warn``), else
    nothing (an interrupted or failed night: its own error is the news)."""
    try:
        close(timeout=timeout)
    except TimeoutError:
        if warn:
            log.warning("the night's Dask %s did not close within %g s (the machine is busy); the night's "
                        "results are all in and are kept", what, timeout)


def _raise_if_timed_out(exc: BaseException, what: str) -> None:
    """:class:`ClusterTimeoutError` saying ``what`` and what to do, when ``exc`` (or its cause) is a timeout."""
    cause: BaseException | None = exc
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        # (a connect that timed out is an OSError: "Timed out trying to connect to ...")
        if isinstance(cause, TimeoutError) or (isinstance(cause, OSError) and str(cause).startswith("Timed out")):
            said = str(cause) or type(cause).__name__
            raise ClusterTimeoutError(
                f"{what} ({said}): the machine may be too busy. Nothing of the night was committed: run it "
                f"again, when the machine is less loaded or with more time for Dask (the environment "
                f"variable {CONNECT_ENV}=900s, for example)") from exc
        cause = cause.__cause__ or cause.__context__
