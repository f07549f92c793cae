"""The ``changedetect`` command line, modelled on rasterio's ``rio``.

One module per subcommand (``changedetect/cli/<name>.py`` exposing ``command``),
shared options in :mod:`changedetect.cli.options`.  Subcommands are imported
lazily so that ``changedetect --help`` stays fast and torch is only imported
by the commands that need it.

Exit codes: 0 success; 1 internal error (a bug); 2 bad input or usage;
3 another run holds the lock; 130 interrupted (Ctrl-C); 141 the output pipe was closed
(``changedetect info TILES | head -1``), said by nothing; 143 terminated (SIGTERM: ``systemctl stop``,
``timeout``, ``kill``), which cleans up as Ctrl-C does.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import importlib.util
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TextIO

import click

from changedetect.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    EXIT_LOCKED,
    ChangeDetectError,
    ChangeDetectWarning,
    LockedError,
)

#: name -> (module under changedetect.cli, one-line help shown in the listing)
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("info", "Describe a stack of tiles: dates, bands, CRS, bounds, nodata."),
    "coregister": ("coregister_cmd", "Align every date onto one grid and write aligned COGs."),
    "detect": ("detect_cmd", "Change probability between two dates (or a series)."),
    "vectorize": ("vectorize_cmd", "Turn a change probability raster into building footprints."),
    "match": ("match_cmd", "Match footprints against a permit register: the violations."),
    "run": ("run_cmd", "The whole chain: co-register, detect, vectorise, match, report."),
    "train": ("train_cmd", "Train a change-detection model."),
    "evaluate": ("evaluate_cmd", "Precision, recall, F1 and IoU of a model on labelled pairs."),
    "report": ("report_cmd", "Write the inspectors' self-contained HTML report."),
    "nightly": ("nightly_cmd", "Incremental, idempotent nightly job over a catalog."),
    "models": ("models_cmd", "List the shipped models and show their cards."),
    "export": ("export_cmd", "Export a model to ONNX with its normalisation, for deployment."),
}

_STATE: dict[str, bool] = {"debug": False}

#: Exit status after Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130
#: Exit status after SIGTERM (128 + SIGTERM: systemd's stop, ``timeout``, ``kill``).
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread where Ctrl-C's KeyboardInterrupt would be, so that the same
    cleanup runs (staging folders and temporary files removed, a nightly lock released): Python's
    default for SIGTERM is to die at once and leave them."""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` while the command runs, when its handler is the default (an
    inherited SIG_IGN or a host's own handler is left alone), then the default again."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


#: Exit status when the reader of stdout went away (128 + SIGPIPE, as shells report ``yes | head``).
#: click's own handling exits 1, which here means a bug.
EXIT_PIPE_CLOSED = 141


class _PipeClosed(Exception):
    """stdout's reader went away (EPIPE); not an ``OSError``, so that click does not turn it into exit 1."""


@contextlib.contextmanager
def _pipe_guard() -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        raise _PipeClosed() from exc


def _quiet_pipe_exit() -> NoReturn:
    """Exit 141 without a word: stdout now goes to /dev/null, so that the interpreter's last flush
    does not print 'Exception ignored ... BrokenPipeError' (Python's documented recipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(EXIT_PIPE_CLOSED)


class _WarningsOnce(logging.Filter):
    """Each Python warning and each warning log line said once per command.

    Without it (``logging.captureWarnings``) a warning is printed with the path
    and source line of the code that raised it, and again by the library's own
    log line saying the same.  Here a warning becomes one ``WARNING`` line (its
    category and source location only with ``-v`` or ``--debug``), and a
    warning and a log record with the same text are shown once, whichever
    comes first; a log warning repeated verbatim (per pair, per date, per window) is
    shown the first time only.  Installed by the group on the root logger's handlers.
    While ``result_says`` (:func:`changedetect.cli.options.said_by_result`), a record marked
    ``extra=SAID_IN_RESULT`` is not shown, nor a warning of its text: the command's result says it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.detailed = False
        self.result_says = False
        self.warned: set[str] = set()
        self.logged: set[str] = set()
        self._showwarning = warnings.showwarning

    def install(self, *, detailed: bool) -> None:
        self.detailed = detailed
        self.result_says = False
        self.warned.clear()
        self.logged.clear()
        for handler in logging.getLogger().handlers:
            if self not in handler.filters:
                handler.addFilter(self)
        if warnings.showwarning != self.show:
            self._showwarning = warnings.showwarning
        warnings.showwarning = self.show

    def uninstall(self) -> None:
        """Leave logging and warnings as :meth:`install` found them (``main`` called from Python, a test,
        a notebook: later log lines of the same text are not this command's to drop)."""
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self)
        if warnings.showwarning == self.show:
            warnings.showwarning = self._showwarning

    def show(self, message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
        """``warnings.showwarning``: log the warning unless its text was just logged."""
        text = str(message).strip()
        if text in self.logged or text in self.warned:
            return
        self.warned.add(text)
        ours = issubclass(category, ChangeDetectWarning)
        shown = text if ours else f"{category.__name__}: {text}"
        if self.detailed:
            shown += f" ({category.__name__} at {filename}:{lineno})" if ours else f" ({filename}:{lineno})"
        logging.getLogger("changedetect" if ours else "py.warnings").warning(shown, extra={"_py_warning": True})

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or getattr(record, "_py_warning", False):
            return True
        shown = getattr(record, "_said_first", None)  # decided once per record, for every handler
        if shown is None:
            text = record.getMessage().strip()
            # the warning, or the same log line, said it already in this command; or its result will
            shown = (text not in self.warned and text not in self.logged
                     and not (self.result_says and getattr(record, "in_summary", False)))
            self.logged.add(text)
            record._said_first = shown
        return bool(shown)


_WARNINGS_ONCE = _WarningsOnce()


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        with _pipe_guard():  # --help, --version
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        from changedetect.cli.options import command_cleanup

        with _pipe_guard(), command_cleanup(ctx):  # a failed command leaves no folder its write check made
            return super().invoke(ctx)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (mod, _) in COMMANDS.items() if _module_exists(mod)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS or not _module_exists(COMMANDS[cmd_name][0]):
            return None
        module = importlib.import_module(f"changedetect.cli.{COMMANDS[cmd_name][0]}")
        command: click.Command = module.command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _module_exists(mod: str) -> bool:
    return importlib.util.find_spec(f"changedetect.cli.{mod}") is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="changedetect")
@click.option("-v", "--verbose", count=True,
              help="Log each step (INFO); -vv: debug logs, rasterio's and GDAL's lines too.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or log lines: the result (a summary, --json), the warnings "
                                                    "about it ('Warning: ...') and errors only.")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, debug: bool) -> None:
    """Find buildings put up or altered without a permit.

    \b
    A typical inspector's run on the bundled sample city:
      changedetect info sample_tiles
      changedetect run sample_tiles --permits permits/sample_register.gpkg --out out/

    Run `changedetect COMMAND --help` for the options and an example of each command.
    """
    _STATE["debug"] = debug
    level = logging.WARNING
    if quiet:
        level = logging.ERROR
    elif verbose == 1:
        level = logging.INFO
    elif verbose >= 2 or debug:
        level = logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if level == logging.INFO:
        ctx.call_on_close(_libraries_quiet())
    _WARNINGS_ONCE.install(detailed=bool(verbose or debug))
    # off again when the command ends, however it was called (main, CliRunner, a notebook): left on the
    # root handlers, its memory of this command's lines dropped the same lines of later library calls
    ctx.call_on_close(_WARNINGS_ONCE.uninstall)
    from changedetect._libtiff import route_libtiff_errors

    # libtiff's own lines ('_tiffWriteProc: No space left on device.' on a full disk) into the log at DEBUG,
    # not onto stderr before the command's one-line error; libtiff's handler is back when the command ends
    ctx.call_on_close(route_libtiff_errors())
    ctx.ensure_object(dict)
    ctx.obj.update(verbose=verbose, quiet=quiet, debug=debug)


#: the libraries whose INFO records are GDAL's error chain behind an error the command already says in one
#: line (a corrupt tile: 'GDAL signalled an error ... Can not read TIFF directory count'; a full disk: eight
#: of them); kept to warnings under ``-v``, which is for changedetect's own steps, and shown with ``-vv``
_LIBRARIES = ("rasterio", "fiona", "pyogrio")


def _libraries_quiet() -> Callable[[], None]:
    """Raise :data:`_LIBRARIES`' loggers to WARNING; returns what puts their levels back."""
    loggers = [logging.getLogger(name) for name in _LIBRARIES]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))

    def restore() -> None:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)

    return restore


def _file_size_limited(exc: BaseException) -> bool:
    """Whether ``exc`` is a write stopped by the process's file-size limit (EFBIG): Python's own ``OSError``
    says so; GDAL's exception does not, but libtiff's line just before it did (:func:`changedetect._libtiff.said`)."""
    if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        return True
    from changedetect._libtiff import said

    return said("File too large")


def _fsize_limit() -> int | None:
    """The process's file-size limit in bytes (RLIMIT_FSIZE), None when there is none."""
    from changedetect.io.atomic import fsize_limit

    return fsize_limit()


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``changedetect`` console script."""
    from changedetect._libtiff import forget

    # torch's OpenMP threads (libgomp) sleep between parallel regions instead of spinning (OpenMP's
    # default): with a core busy elsewhere (the nightly job's other pair, any other process) a spinning
    # thread takes the core the working one needs. `detect` on the sample pair beside one busy core:
    # 7.7 s instead of 9.3 s, alone the same wall time for 20 % less CPU (docs/benchmarks.md). libgomp
    # reads it once, when torch loads (later than this: no command imports torch at start); a value
    # the user set wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    forget()  # a libtiff line of an earlier command in this process (a notebook) says nothing of this one
    try:
        with _sigterm_as_interrupt():
            _main(argv)
    finally:
        _WARNINGS_ONCE.uninstall()


def _main(argv: list[str] | None) -> NoReturn:
    try:
        rv = cli.main(args=argv, prog_name="changedetect", standalone_mode=False)
        with _pipe_guard():
            sys.stdout.flush()  # what print() left in the buffer: a closed pipe shows here
        sys.exit(rv if isinstance(rv, int) else 0)
    except _PipeClosed:
        _quiet_pipe_exit()
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        _say(exc.show)
        sys.exit(EXIT_BAD_INPUT if exc.exit_code == 2 else exc.exit_code)
    except click.Abort as exc:  # click turns Ctrl-C (KeyboardInterrupt) into Abort
        if isinstance(exc.__context__, Terminated):
            _say("Terminated.")
            sys.exit(EXIT_TERMINATED)
        if isinstance(exc.__context__, KeyboardInterrupt):
            _say("Interrupted.")
            sys.exit(EXIT_INTERRUPTED)
        _say("Aborted.")
        sys.exit(EXIT_BAD_INPUT)
    except ChangeDetectError as exc:
        if _STATE["debug"]:
            raise
        _exit_if_interrupted(exc)
        _say(f"Error: {exc}")
        sys.exit(EXIT_LOCKED if isinstance(exc, LockedError) else EXIT_BAD_INPUT)
    except KeyboardInterrupt as exc:
        _exit_interrupted(exc)
    except Exception as exc:  # a bug: say so, once, and how to see more
        if _STATE["debug"]:
            raise
        _exit_if_interrupted(exc)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):  # not a bug: the disk
            where = f" writing '{exc.filename}'" if exc.filename else ""
            _say(f"Error: no space left on the disk{where} ({exc.strerror}): free some space and run the "
                 "command again (outputs are written to temporary files and renamed, so nothing "
                 "half-written is left, and a nightly state stays as it was)")
            sys.exit(EXIT_BAD_INPUT)
        if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM):  # not a bug: the files' owners
            # (a nightly state made by root, then run by cron's user: its state.json, its footprints' parquet)
            what = f"'{exc.filename}' ({exc.strerror})" if exc.filename else f"({exc.strerror or exc})"
            _say(f"Error: permission denied: {what}: run the command as a user that may read and write its "
                 "inputs, outputs and state folder, or change their owner or mode (chown/chmod); nothing was "
                 "left half-written")
            sys.exit(EXIT_BAD_INPUT)
        if _file_size_limited(exc):  # not a bug either: `ulimit -f` (systemd's LimitFSIZE=) or the file system
            limit = _fsize_limit()
            _say(f"Error: an output file reached this process's file-size limit ({limit} bytes, RLIMIT_FSIZE): "
                 "raise it (`ulimit -f unlimited`; systemd: LimitFSIZE=infinity) and run the command again "
                 "(nothing half-written is left)" if limit is not None else
                 "Error: an output file grew past the largest file its disk allows (File too large: FAT32 "
                 "and some network shares stop at 4 GiB): write the outputs to another disk and run the "
                 "command again (nothing half-written is left)")
            sys.exit(EXIT_BAD_INPUT)
        _say(f"Internal error: {type(exc).__name__}: {exc}\n"
             "This is a bug in changedetect. Re-run with --debug for the traceback and report it.")
        sys.exit(EXIT_INTERNAL)


def _exit_interrupted(exc: KeyboardInterrupt) -> NoReturn:
    terminated = isinstance(exc, Terminated)
    _say("Terminated." if terminated else "Interrupted.")
    sys.exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)


def _exit_if_interrupted(exc: BaseException) -> None:
    """Exit as Ctrl-C or SIGTERM does when ``exc`` was raised while one unwound (it is in ``exc``'s context
    chain): e.g. torch's SIGCHLD handler raising 'DataLoader worker (pid N) is killed by signal: Terminated.'
    in a ``finally`` block, when the SIGTERM of ``systemctl stop`` or ``timeout`` (sent to the whole process
    group) killed `train`'s data-loader workers too; before, 'Internal error ... This is a bug', exit 1."""
    seen: set[int] = set()
    cause = exc.__context__
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            _exit_interrupted(cause)
        seen.add(id(cause))
        cause = cause.__context__


def _say(text: str | Callable[[], None]) -> None:
    """The command's last words on stderr (``text``, or a function that writes them: click's usage errors):
    a reader of stderr gone (``2>&1 | head``) does not turn them into exit 1 ('a bug') with Python's own
    'BrokenPipeError' lines; the exit status stays the one the words were for."""
    try:
        text() if callable(text) else click.echo(text, err=True)
        sys.stderr.flush()
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        try:  # the interpreter's last flush of stderr must not raise again
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stderr.fileno())
        except (OSError, ValueError):
            pass


__all__ = ["COMMANDS", "cli", "main"]
