"""Argument types shared by every command, so a flag means and checks the same thing everywhere."""

from __future__ import annotations

import argparse
import math


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}" if minimum else "must be 0 or more")
    return value


def positive_int(text: str) -> int:
    """An integer of at least 1 (`--epochs`, `--threads`, `--workers`, ...)."""
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """An integer of at least 0 (`--seed`, `--ngram-buckets`)."""
    return _whole_number(text, 0)


def finite_float(text: str) -> float:
    """A finite number (`--lr`, `--keep-prob`); ranges are checked by the config."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError("must be a finite number")
    return value


def int_list(text: str) -> tuple[int, ...]:
    """Comma-separated positive integers such as `128,64`."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 128,64, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers like 128,64, got {text!r}")
    return values


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be 0 to 65535")
    return value


def format_metrics(m: dict, prefix: str = "test ") -> str:
    """Two lines: the headline metrics and the confusion matrix (train, evaluate and baseline print these)."""
    (tn, fp), (fn, tp) = m["confusion"]
    auc = "n/a" if m["roc_auc"] is None else f"{m['roc_auc']:.4f}"
    return (
        f"{prefix}n={m['n']}  accuracy {m['accuracy']:.4f}  precision {m['precision']:.4f}  "
        f"recall {m['recall']:.4f}  f1 {m['f1']:.4f}  roc_auc {auc}  "
        f"(majority {m['majority_accuracy']:.4f})\nconfusion [[tn fp] [fn tp]] = [[{tn} {fp}] [{fn} {tp}]]"
    )
