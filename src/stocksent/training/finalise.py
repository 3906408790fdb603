"""After the last epoch: the blend and calibration on validation, the test metrics, the model directory.

The model directory is written once, here, with `config.json` last: a directory that has it is
complete (see rundir.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from stocksent.artifacts import CONFIG, CURVE, METRICS, VOCAB, save_weights
from stocksent.atomic import write_bytes, write_json
from stocksent.config import TrainConfig
from stocksent.evaluation.metrics import classification_metrics
from stocksent.inference import network_logits, sigmoid
from stocksent.model import LSTMClassifier
from stocksent.rates import RATES, ValidationRates
from stocksent.training.blend import Blend, fit_blend, fit_linear, fold_blend_
from stocksent.training.calibration import Calibration, calibrate
from stocksent.training.prepare import TrainingData

log = logging.getLogger(__name__)

# Training messages the blend's logistic regression is fitted on at most: 1M messages' n-grams are
# ~0.6 GB of sparse matrix (and as much again inside liblinear); 10M would be ten times that.
BLEND_MAX_TRAIN = 1_000_000


def blend_on_validation(
    model: LSTMClassifier, config: TrainConfig, data: TrainingData, device: torch.device
) -> Blend | None:
    """Fold the logistic regression over the model's n-grams into it (blend.py); None where off or impossible."""
    if not (config.linear_blend and config.ngram_buckets):
        return None
    splits = data.splits
    one_class = [
        name
        for name, part in (("training", splits.train), ("validation", splits.val))
        if len(np.unique(part.labels)) < 2
    ]
    if one_class:
        log.info(f"blend skipped: the {' and '.join(one_class)} split holds one class only")
        return None
    train_x, train_y = data.train_x, splits.train.labels
    if len(train_x) > BLEND_MAX_TRAIN:  # bounds the regression's sparse matrices (~25 bytes per n-gram)
        pick = np.sort(np.random.default_rng(config.seed).choice(len(train_x), BLEND_MAX_TRAIN, replace=False))
        train_x, train_y = train_x.subset(pick), train_y[pick]
        log.info(
            f"blend: the logistic regression is fitted on a seeded sample of {BLEND_MAX_TRAIN:,} training messages"
        )
    linear = fit_linear(
        train_x,
        train_y,
        data.val_x,
        splits.val.labels,
        model.embedding.num_embeddings,
        config.ngram_buckets,
        config.seed,
    )
    blend = fit_blend(network_logits(model, data.val_x, device=device), linear, splits.val.labels)
    fold_blend_(model, linear, blend)
    log.info(
        f"blend: validation accuracy {blend.val_accuracy_model:.4f} (model) and {blend.val_accuracy_linear:.4f} "
        f"(logistic regression, C={blend.c:g}) -> {blend.val_accuracy_blend:.4f}"
    )
    return blend


def calibrate_on_validation(model: LSTMClassifier, data: TrainingData, device: torch.device) -> Calibration:
    """Temperature scaling and the decision threshold, both fitted on validation data only.

    The temperature is folded into the output layer (logit / T), so every engine (PyTorch, ONNX,
    the fast path) serves calibrated probabilities with no extra step.
    """
    calibration = calibrate(network_logits(model, data.val_x, device=device), data.splits.val.labels)
    model.scale_logit_(1.0 / calibration.temperature)
    return calibration


def rates_on_validation(
    model: LSTMClassifier, data: TrainingData, threshold: float, device: torch.device
) -> ValidationRates | None:
    """The served model's rates on validation (rates.py), for the index's prior-shift corrections.

    Measured after the blend and calibration are folded in, at the chosen threshold: the very
    probabilities and labels the model will serve. None (and a log line) where validation holds one
    class only: no rates can be measured.
    """
    labels = data.splits.val.labels
    if len(np.unique(labels)) < 2:
        log.info("rates.json skipped: the validation split holds one class only")
        return None
    return ValidationRates.measure(labels, sigmoid(network_logits(model, data.val_x, device=device)), threshold)


def finalise(
    out: Path,
    best: LSTMClassifier,
    config: TrainConfig,
    data: TrainingData,
    manifest: dict,
    progress: dict,
    device: torch.device,
    seconds: float,
) -> dict:
    """Blend, calibrate, measure on test and write the model directory; returns metrics.json's content."""
    from stocksent.evaluation.plots import learning_curve_png

    blend = blend_on_validation(best, config, data, device)
    calibration = calibrate_on_validation(best, data, device)
    rates = rates_on_validation(best, data, calibration.threshold, device)
    test_logits = network_logits(best, data.test_x, device=device)
    test_p = 1.0 / (1.0 + np.exp(-test_logits.astype(np.float64)))
    metrics = {
        "history": progress["history"],
        "best_epoch": progress["best_epoch"],
        "test": classification_metrics(data.splits.test.labels, test_p, calibration.threshold),
        "split": data.splits.sizes(),
        "calibration": calibration.to_dict(),
        "blend": blend.to_dict() if blend else None,
        "seconds_total": seconds,
    }
    save_weights(out, best)
    write_json(out / VOCAB, data.vocab.to_dict())
    write_json(out / METRICS, metrics)
    if rates is not None:
        write_json(out / RATES, rates.to_dict())
    write_bytes(out / CURVE, learning_curve_png(progress["history"]))
    write_json(
        out / CONFIG,
        {
            **manifest,
            "model": best.config.to_dict(),
            "temperature": calibration.temperature,
            "threshold": calibration.threshold,
        },
    )
    return metrics
