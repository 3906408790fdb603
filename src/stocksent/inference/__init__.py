"""Inference engines: the only code that turns word ids into logits (torch, fast CPU, ONNX Runtime)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def network_logits(model, sequences: Sequence[np.ndarray], device="cpu", batch_size: int = 1024) -> np.ndarray:
    """Logits (float32) of encoded messages in input order: what training's validation, calibration
    and the blend consume."""
    from stocksent.model import predict_proba_sequences
    from stocksent.training.calibration import logits_from_proba

    return logits_from_proba(predict_proba_sequences(model, sequences, batch_size, device=device))
