"""`stocksent report`: a self-contained HTML report of a trained model."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("report", help="self-contained HTML report of a trained model")
    p.add_argument("--model", required=True, help="model directory written by train")
    p.add_argument("--baseline", help="directory written by `stocksent baseline`, shown beside the model")
    p.add_argument("--out", help="HTML file to write (default: MODEL/report.html)")
    p.add_argument("--data", help="the training file, if it moved since training")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from stocksent.evaluation.report import write_report

    out = write_report(args.model, args.baseline, args.out, args.data)
    print(f"report: {out}")
    return 0
