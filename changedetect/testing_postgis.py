"""A throwaway PostgreSQL + PostGIS server, for tests and benchmarks (as :mod:`changedetect.testing`).

:func:`throwaway_postgis` runs ``initdb`` in a temporary folder, starts the server on a free
localhost port (trust authentication, ``fsync`` off, its socket in that folder), creates a
database with the ``postgis`` extension, yields its URL, and at the end stops the server and
deletes the folder.  ``scripts/setup_postgis.sh`` installs the Debian packages it needs.
``initdb`` refuses to run as root: as root the server runs as the ``postgres`` system user
(or a ``cdtest`` system user created for the purpose).

Example
-------
>>> from changedetect.testing_postgis import throwaway_postgis
>>> with throwaway_postgis() as url:  # doctest: +SKIP
...     with psycopg.connect(url) as conn:
...         conn.execute("CREATE TABLE permits (...)")
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: the server's superuser, as the URLs name it
USER = "cdtest"
INSTALL_HINT = "bash scripts/setup_postgis.sh installs it"


class PostgisUnavailable(RuntimeError):
    """No throwaway server here: PostgreSQL, PostGIS or psycopg missing, or the server did not start."""


def postgis_bin_dir() -> Path | None:
    """The ``bin`` folder of the newest PostgreSQL that has PostGIS installed, or None."""
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True):
        version = Path(d).parent.name
        if (Path(d) / "initdb").exists() and Path(f"/usr/share/postgresql/{version}/extension/postgis.control").exists():
            return Path(d)
    return None


def server_user() -> str | None:
    """None when not root; else a system user initdb will accept (``postgres``, else ``cdtest``, created)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "cdtest"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "cdtest"],
                   check=True, capture_output=True)
    return "cdtest"


def run_as(cmd: list[str], user: str | None) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` (as ``user`` when given), raising on failure; two minutes at most."""
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)


def free_port() -> int:
    """A localhost TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def throwaway_postgis(database: str = "registers", *, prefix: str = "cd-pg-") -> Iterator[str]:
    """Start a server, create ``database`` with PostGIS in it, and yield its ``postgresql://`` URL.

    Raises
    ------
    PostgisUnavailable
        PostgreSQL with PostGIS or psycopg is not installed, or the server would not start
        (the message says which, with the server's log).
    """
    bindir = postgis_bin_dir()
    if bindir is None:
        raise PostgisUnavailable(f"PostgreSQL with PostGIS is not installed ({INSTALL_HINT})")
    try:
        import psycopg
    except ImportError:
        raise PostgisUnavailable("psycopg is not installed (pip install '.[postgis]')") from None
    user = server_user()
    root = Path(tempfile.mkdtemp(prefix=prefix))
    data = root / "data"
    os.chmod(root, 0o755)
    if user is not None:
        shutil.chown(root, user=user)
    port = free_port()
    try:
        run_as([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", USER, "-E", "UTF8",
                "--locale=C", "--no-sync"], user)
        run_as([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60",
                "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"], user)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise PostgisUnavailable(
            f"could not start a throwaway PostgreSQL server: {exc}; {getattr(exc, 'stderr', '')} {log}") from None
    try:
        with psycopg.connect(f"postgresql://{USER}@127.0.0.1:{port}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        url = f"postgresql://{USER}@127.0.0.1:{port}/{database}"
        with psycopg.connect(url) as conn:
            conn.execute("CREATE EXTENSION postgis")
            conn.commit()
        yield url
    finally:
        stop = [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
        subprocess.run(stop if user is None else ["runuser", "-u", user, "--", *stop], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


__all__ = ["PostgisUnavailable", "free_port", "postgis_bin_dir", "run_as", "server_user", "throwaway_postgis"]
