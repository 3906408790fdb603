"""Command line: one module per command (a parser and a short handler that calls the library).

Handlers import the library lazily, so `stocksent --help` answers without loading torch. Errors a
user can cause (`StocksentError`) become one `stocksent: error:` line and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys

from stocksent import __version__
from stocksent.cli import baseline, bench, evaluate, export, predict, report, serve, train, tune
from stocksent.errors import StocksentError

COMMANDS = [train, evaluate, predict, serve, export, baseline, report, tune, bench]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stocksent", description="Sentiment of StockTwits messages with an LSTM.")
    parser.add_argument("--version", action="version", version=f"stocksent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    install_log_handler()
    try:
        return args.handler(args)
    except StocksentError as err:
        print(f"stocksent: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stocksent: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (e.g. `| head`): not an error worth a traceback
        return 0


if __name__ == "__main__":
    sys.exit(main())
