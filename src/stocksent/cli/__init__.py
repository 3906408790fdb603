"""Command line: one module per command (a parser and a short handler that calls the library).

Handlers import the library lazily, so `stocksent --help` answers without loading torch. Errors a
user can cause (`StocksentError`) become one `stocksent: error:` line and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import signal
import sys
import threading

from stocksent import __version__
from stocksent.cli import baseline, bench, evaluate, export, index, predict, report, score, serve, study, train, tune
from stocksent.cli.terminal import printable
from stocksent.errors import StocksentError

COMMANDS = [train, evaluate, predict, score, index, study, serve, export, baseline, report, tune, bench]


class Parser(argparse.ArgumentParser):
    """argparse with usage errors as the one `stocksent: error:` line every other error gets."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"stocksent: error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="stocksent", description="Sentiment of StockTwits messages with an LSTM.")
    parser.add_argument("--version", action="version", version=f"stocksent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS:
        command.register(sub)
    return parser


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (pytest's capture, a redirect), bare lines."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ sets it; the property ignores it
        pass


def install_log_handler() -> None:
    """The library logs to `stocksent`; the command line shows those lines on stderr, as they are."""
    logger = logging.getLogger("stocksent")
    if not any(isinstance(h, StderrHandler) for h in logger.handlers):
        logger.addHandler(StderrHandler())
    logger.setLevel(logging.INFO)


class Terminated(BaseException):
    """SIGTERM or SIGHUP, raised in the main thread so that `with` blocks unwind as for Ctrl-C:
    an atomic write in progress removes its temp file and leaves the old output as it was."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame) -> None:
    from stocksent.atomic import remove_temp_files

    remove_temp_files()  # in case the exception meets an `except BaseException` that keeps going
    raise Terminated(signum)


@contextlib.contextmanager
def terminate_as_exception():
    """SIGTERM/SIGHUP become `Terminated` while a command runs; an ignored signal (nohup) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, _raise_terminated)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: list[str] | None = None) -> int:
    """Run one command; `argv` None: this process's own arguments (the `stocksent` program)."""
    code = _run(argv)
    if argv is None:
        # The program is about to exit: the interpreter's last full collection would walk every
        # object torch and pyarrow made (~0.3 s); frozen, they are left to the exit, as all memory is.
        gc.freeze()
    return code


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    install_log_handler()
    try:
        with terminate_as_exception():
            return args.handler(args)
    except StocksentError as err:
        print(f"stocksent: error: {printable(str(err))}", file=sys.stderr)  # a file name may hold escapes
        return 2
    except KeyboardInterrupt:
        print("stocksent: interrupted", file=sys.stderr)
        return 130
    except Terminated as stop:
        print(f"stocksent: stopped by {signal.Signals(stop.signum).name}", file=sys.stderr)
        return 128 + stop.signum
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (e.g. `| head`): not an error worth a traceback
        return 0


if __name__ == "__main__":
    sys.exit(main())
