"""Review: a nightly test once failed with a bare ``TimeoutError`` out of Dask distributed, on a machine
whose two cores other jobs took.

Dask gives a client 30 s (``distributed.comm.timeouts.connect``) to connect to its cluster, the
cluster as long for each connection it makes while it starts, and the client twice that to close.
The night's ``LocalCluster`` runs its event loop in a thread of this process: when the machine's
cores are taken, that loop can wait longer than 30 s for the CPU, and a night that ran to completion
would have failed with a bare ``TimeoutError`` raised through tornado's coroutine runner (``Client``
-> ``sync`` -> ``_ensure_connected``'s ``wait_for``): no word of what happened or what to do.  Now
the night's own cluster runs under longer timeouts (set for its lifetime only), a cluster or a
scheduler that still does not answer in time is one :class:`ClusterTimeoutError` saying what to do,
and a close that times out once the results are in keeps the night.

The slow machine is made certain, not timed: what would answer late never answers.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import Any

import dask
import distributed  # (its settings: distributed.comm.timeouts.connect)
import pytest
from dask.utils import parse_timedelta

from changedetect import _nightly_dask as nd
from changedetect.errors import ChangeDetectError

CONNECT = "distributed.comm.timeouts.connect"


def _seen_timeout(task: dict[str, Any]) -> dict[str, Any]:
    """A task that says which connect timeout is in force while it runs."""
    return {"i": task["i"], "connect": parse_timedelta(dask.config.get(CONNECT), default="seconds")}


def _tasks() -> list[dict[str, Any]]:
    return [{"i": i} for i in range(2)]


async def _never(*args: object, **kwargs: object) -> None:
    """What a starved event loop is to a timed wait: no answer."""
    await asyncio.Event().wait()


def test_the_nights_cluster_runs_under_longer_timeouts_set_for_its_lifetime_only() -> None:
    before = dask.config.get(CONNECT)
    results = nd.compute(_seen_timeout, _tasks(), scheduler=None, workers=1)
    assert [r["i"] for r in results] == [0, 1]
    assert {r["connect"] for r in results} == {nd.START_TIMEOUT_S} and nd.START_TIMEOUT_S >= 300
    assert dask.config.get(CONNECT) == before  # the process's own setting, once the night's cluster is gone


def test_a_longer_timeout_the_user_set_is_kept() -> None:
    with dask.config.set({CONNECT: "900s"}):
        results = nd.compute(_seen_timeout, _tasks(), scheduler=None, workers=1)
        assert {r["connect"] for r in results} == {900}
        assert dask.config.get(CONNECT) == "900s"


def _assert_clear(err: ChangeDetectError, what: str) -> None:
    message = str(err)
    assert isinstance(err, TimeoutError) and isinstance(err, nd.ClusterTimeoutError)
    assert what in message, message
    assert "Nothing of the night was committed" in message and f"{nd.CONNECT_ENV}=" in message, message
    assert "\n" not in message


async def _timed_out(*args: object, **kwargs: object) -> None:
    """What ``distributed.utils.wait_for`` raises when the wait runs out."""
    raise TimeoutError  # (asyncio.wait_for's, a bare builtin one)


def test_a_client_that_does_not_connect_in_time_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The failure seen: the client's first exchange with the scheduler waited past the timeout (a
    bare ``TimeoutError`` before); the cluster it started is closed."""
    monkeypatch.setattr(distributed.Client, "_update_scheduler_info", _timed_out)
    closed: list[bool] = []
    close = distributed.LocalCluster.close

    def closing(self: Any, *args: Any, **kwargs: Any) -> Any:
        closed.append(True)
        return close(self, *args, **kwargs)

    monkeypatch.setattr(distributed.LocalCluster, "close", closing)
    with pytest.raises(ChangeDetectError) as err:
        nd.compute(_seen_timeout, _tasks(), scheduler=None, workers=1)
    _assert_clear(err.value, f"the night's Dask client did not connect to its LocalCluster within "
                             f"{nd.START_TIMEOUT_S:g} s (TimeoutError)")
    assert closed


def test_a_cluster_that_does_not_start_in_time_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from distributed.comm import inproc

    monkeypatch.setattr(nd, "START_TIMEOUT_S", 0.5)
    monkeypatch.setattr(inproc.InProcConnector, "connect", _never)
    with dask.config.set({CONNECT: "0.1s"}), pytest.raises(ChangeDetectError) as err:
        nd.compute(_seen_timeout, _tasks(), scheduler=None, workers=1)
    _assert_clear(err.value, "the night's Dask cluster (a LocalCluster in this process) did not start within 0.5 s")


def test_a_close_that_times_out_keeps_the_nights_results(monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    close = distributed.Client.close

    def late(self: Any, *args: Any, **kwargs: Any) -> None:
        close(self, *args, **kwargs)
        raise TimeoutError(f"timed out after {kwargs.get('timeout')} s.")  # as distributed's sync says it

    monkeypatch.setattr(distributed.Client, "close", late)
    with caplog.at_level(logging.WARNING, logger="changedetect.nightly"):
        results = nd.compute(_seen_timeout, _tasks(), scheduler=None, workers=1)
    assert [r["i"] for r in results] == [0, 1]
    assert any("did not close within" in r.getMessage() and "kept" in r.getMessage() for r in caplog.records)


def _unreachable() -> tuple[socket.socket, str]:
    """A local TCP port bound but not listening (held open, so nobody else takes it): refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, f"tcp://127.0.0.1:{sock.getsockname()[1]}"


def test_a_scheduler_not_reached_in_time_is_one_clear_error() -> None:
    sock, address = _unreachable()
    with sock, dask.config.set({CONNECT: "0.5s"}), pytest.raises(ChangeDetectError) as err:
        nd.compute(_seen_timeout, _tasks(), scheduler=address, workers=None)
    _assert_clear(err.value, f"could not connect to the Dask scheduler at {address} within 0.5 s")


def test_the_command_says_it_in_one_line_and_commits_nothing(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    import changedetect.cli as cdcli
    from changedetect.testing import make_nightly_catalog

    world = make_nightly_catalog(tmp_path, {"d1": 1})
    sock, address = _unreachable()
    cdcli._STATE["debug"] = False
    with sock, dask.config.set({CONNECT: "0.5s"}), pytest.raises(SystemExit) as exc:
        cdcli.main(["nightly", "--catalog", str(world["tiles"]), "--permits", str(world["permits"]),
                    "--state", str(tmp_path / "st"), "--out", str(tmp_path / "out"), "--config", str(world["config"]),
                    "--scheduler", address, "--night", "2024-03-16"])
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"Error: could not connect to the Dask scheduler at {address}"), err
    assert not (tmp_path / "st" / "state.json").exists() and not any((tmp_path / "out").glob("*"))
