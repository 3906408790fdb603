"""`stocksent serve`: the HTTP scoring service."""

from __future__ import annotations

import argparse

from stocksent.cli.args import finite_float, port_number, positive_int
from stocksent.cli.index import add_period_flags, require_index_extra

INDEX_FLAGS = ("prices", "freq", "calendar", "neutral")  # mean something only with --index


def seconds(text: str) -> float:
    """A time limit: a finite number of seconds from 0.1 to one day."""
    value = finite_float(text)
    if not 0.1 <= value <= 86_400:
        raise argparse.ArgumentTypeError("must be 0.1 to 86400 seconds")
    return value


def register(sub) -> None:
    p = sub.add_parser(
        "serve", help="serve a model over HTTP (JSON API, web page at /, docs at /docs; --index: the index at /index)"
    )
    p.add_argument("--model", required=True, help="model directory written by train")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port_number, default=8000, help="default 8000 (0: any free port)")
    p.add_argument("--workers", type=positive_int, default=1, help="processes, each with its own copy of the model")
    p.add_argument("--backend", choices=["torch", "onnx"], default="torch", help="scoring engine (default torch)")
    p.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="scoring threads per worker, each with one torch thread "
        "(default 1: the fastest on 2 cores, as the GIL is shared)",
    )
    p.add_argument(
        "--header-timeout",
        type=seconds,
        default=10.0,
        metavar="SECONDS",
        help="a request's line and headers must arrive within this (default 10; else 408, connection closed)",
    )
    p.add_argument(
        "--body-timeout",
        type=seconds,
        default=60.0,
        metavar="SECONDS",
        help="a request's body must arrive within this, each part within 10 s (default 60; else 408)",
    )
    p.add_argument(
        "--http",
        choices=["httptools", "h11"],
        help="HTTP/1.1 parser (default httptools where installed, else h11)",
    )
    p.add_argument("--access-log", action="store_true", help="log every request (off by default: it costs time)")
    index = p.add_argument_group(
        "the sentiment index",
        "GET /v1/index and the page at /index; --freq is the period they show first, each other one is "
        "computed when first asked for",
    )
    index.add_argument(
        "--index",
        metavar="SCORED",
        help="serve the index of these scored messages: a file or folder of `stocksent score` output "
        "(scored by --model, whose rates.json corrects the shares)",
    )
    index.add_argument("--prices", metavar="PRICES.csv", help="CSV of date,ticker,close: the close beside the index")
    add_period_flags(index, defaults=False)
    p.set_defaults(handler=run)


def index_options(args: argparse.Namespace):
    """`--index` and its flags as the server takes them, or None; a flag of the index without it is an error."""
    from stocksent.errors import StocksentError

    if args.index is None:
        given = [f"--{name}" for name in INDEX_FLAGS if getattr(args, name) is not None]
        if given:
            raise StocksentError(
                f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for the index: add --index SCORED"
            )
        return None
    require_index_extra(args.calendar or "auto", "serve --index")
    from stocksent.serving.index_source import IndexOptions

    return IndexOptions(
        args.index, freq=args.freq or "1D", calendar=args.calendar or "auto", neutral=args.neutral, prices=args.prices
    )


def run(args: argparse.Namespace) -> int:
    from stocksent.serving.server import run as serve

    index = index_options(args)
    serve(
        args.model,
        args.host,
        args.port,
        args.workers,
        args.backend,
        args.access_log,
        args.threads,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        http=args.http,
        index=index,
    )
    return 0
