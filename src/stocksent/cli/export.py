"""`stocksent export`: write a trained model's network as ONNX."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("export", help="export a trained model's network as ONNX")
    p.add_argument("--model", required=True, help="model directory written by train")
    p.add_argument(
        "--onnx",
        metavar="PATH",
        help="where to write the .onnx file (default: MODEL/model.onnx, which --backend onnx then uses)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from stocksent.inference.onnx import LOGIT, P_BULLISH, export_model_dir

    path = export_model_dir(args.model, args.onnx)
    print(
        f"wrote {path} (inputs: ids int64 (batch, time) right-padded with 0, lengths int64 (batch,); "
        f"outputs: {P_BULLISH} float32 (batch,), {LOGIT} float32 (batch,))"
    )
    return 0
