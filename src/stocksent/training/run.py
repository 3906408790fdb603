"""`train`: a run from options to a model directory, in three parts: prepare, epochs, finalise."""

from __future__ import annotations

import datetime as dt
import logging
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from stocksent.artifacts import VOCAB, load_tensors, save_tensors
from stocksent.atomic import write_json
from stocksent.config import ModelConfig, TrainConfig
from stocksent.inference import network_logits
from stocksent.model import LSTMClassifier
from stocksent.training.checkpoint import load_checkpoint, resume_config, save_checkpoint, saved_run
from stocksent.training.epochs import (
    epoch_line,
    loss_function,
    make_optimizers,
    resolve_device,
    set_learning_rates,
    train_one_epoch,
)
from stocksent.training.finalise import finalise
from stocksent.training.init_from import configured_like, initial_network, read_base, taken_from_base
from stocksent.training.prepare import TrainingData, prepare_data
from stocksent.training.rundir import BEST_WEIGHTS, claimed
from stocksent.version import __version__

if TYPE_CHECKING:
    from stocksent.sentiment import SentimentModel

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What `train` made: the model directory, its metrics, and the model itself (`.model`)."""

    directory: Path
    metrics: dict
    _model: SentimentModel | None = field(default=None, repr=False)

    @property
    def out(self) -> Path:  # the name of earlier versions
        return self.directory

    @property
    def model(self) -> SentimentModel:
        """The trained model, loaded from `directory` on first use."""
        if self._model is None:
            from stocksent.sentiment import SentimentModel

            self._model = SentimentModel.load(self.directory)
        return self._model


def default_out_dir() -> Path:
    return Path("runs") / dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def run_manifest(config: TrainConfig, data: TrainingData) -> dict:
    """config.json without the parts only the end of training knows: how the model was made, and how
    to treat new text exactly as training did."""
    return {
        "stocksent_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "train": config.to_dict(),
        "text": config.text_options.to_dict(),
        "data": data.loaded.record(config.effective_split_seed, config.max_examples),
    }


def train(config: TrainConfig, on_epoch: Callable[[dict], None] | None = None) -> TrainResult:
    """Train, keep the best epoch by validation accuracy, blend, calibrate, evaluate it on the test split.

    `on_epoch(row)` sees each epoch's history row after its checkpoint is saved (tuning prunes from
    it; raising there stops training, and `resume` can continue from that epoch).

    >>> result = train(preset("default", data="messages.csv", out="runs/mine"))  # doctest: +SKIP
    >>> result.metrics["test"]["accuracy"], result.model.predict_proba("$SPY to the moon")  # doctest: +SKIP
    (0.7994, 0.91)
    """
    config.validate()
    out = Path(config.out) if config.out else default_out_dir()
    with claimed(out, config.resume):
        started = time.perf_counter()
        recorded_sha = None
        if config.resume:
            if config.init_from:  # those options came from the base model, not from the flags
                config = taken_from_base(config, saved_run(out)["train"])
            config = resume_config(out, config)
            recorded_sha = saved_run(out)["data"]["sha256"]
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        device = resolve_device(config.device)
        base = None
        if config.init_from and not config.resume:
            base = read_base(config.init_from)
            config = configured_like(config, base)
        data = prepare_data(config, out, recorded_sha, base.vocab if base else None)
        # Recorded absolute, so evaluate and resume work from anywhere.
        paths = [str(p) for p in data.loaded.paths]
        config.data = paths[0] if len(paths) == 1 else paths
        manifest = run_manifest(config, data)
        if config.resume:  # the run keeps the date it was started
            manifest["created"] = saved_run(out).get("created", manifest["created"])

        torch.manual_seed(config.seed)
        sparse = config.optimizer == "adam"
        if base is not None:
            model = initial_network(base, data.vocab, sparse_embedding=sparse)
        else:
            model = LSTMClassifier.from_config(model_config(config, data), sparse_embedding=sparse)
        model.to(device)
        optimizers = make_optimizers(model, config)
        progress = {"epoch": 0, "history": [], "best_epoch": 0, "best_val_accuracy": -1.0}
        if config.resume:
            progress = load_checkpoint(out, model, optimizers)
            started -= progress.get("elapsed", 0.0)
            log.info(f"resuming {out} after epoch {progress['epoch']}")
        else:
            write_json(out / VOCAB, data.vocab.to_dict())
            save_checkpoint(out, model, optimizers, {**progress, "elapsed": 0.0}, manifest)

        run_epochs(out, model, optimizers, config, data, progress, manifest, device, started, on_epoch)

        best = LSTMClassifier.from_config(model.config).to(device)
        best.load_state_dict(load_tensors(out / BEST_WEIGHTS))
        metrics = finalise(out, best, config, data, manifest, progress, device, time.perf_counter() - started)
    return TrainResult(out, metrics)


def model_config(config: TrainConfig, data: TrainingData) -> ModelConfig:
    return ModelConfig(
        len(data.vocab), config.embed_size, tuple(config.lstm_sizes), config.keep_prob, config.ngram_buckets
    )


def run_epochs(
    out: Path,
    model: LSTMClassifier,
    optimizers,
    config: TrainConfig,
    data: TrainingData,
    progress: dict,
    manifest: dict,
    device: torch.device,
    started: float,
    on_epoch: Callable[[dict], None] | None,
) -> None:
    """Epochs from the one after `progress["epoch"]`: train, validate, keep the best, checkpoint."""
    criterion = loss_function(config.loss)
    n_batches = math.ceil(len(data.train_x) / config.batch_size)
    val_y = data.splits.val.labels
    for epoch in range(progress["epoch"] + 1, config.epochs + 1):
        if config.patience and epoch - progress["best_epoch"] > config.patience and progress["best_epoch"]:
            log.info(f"early stop: no better validation accuracy for {config.patience} epochs")
            break
        epoch_start = time.perf_counter()
        rng = np.random.default_rng([config.seed, epoch])  # per-epoch order: resume needs no RNG state
        set_learning_rates(optimizers, config.lr_decay ** (epoch - 1))
        train_loss, train_accuracy = train_one_epoch(
            model,
            optimizers,
            criterion,
            data.train_x,
            data.splits.train.labels,
            config.batch_size,
            rng,
            device,
            desc=f"epoch {epoch}/{config.epochs}",
            word_dropout=config.word_dropout,
        )
        val_logits = network_logits(model, data.val_x, device=device)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_accuracy": train_accuracy,
            "val_loss": float(criterion(torch.from_numpy(val_logits).double(), torch.from_numpy(val_y).double())),
            "val_accuracy": float(((val_logits >= 0) == (val_y >= 0.5)).mean()),
            "seconds": time.perf_counter() - epoch_start,
        }
        progress["history"].append(row)
        log.info(epoch_line(epoch, config.epochs, n_batches, row))
        if row["val_accuracy"] > progress["best_val_accuracy"]:
            progress["best_epoch"], progress["best_val_accuracy"] = epoch, row["val_accuracy"]
            save_tensors(out / BEST_WEIGHTS, model.state_dict())
        progress["epoch"] = epoch
        save_checkpoint(out, model, optimizers, {**progress, "elapsed": time.perf_counter() - started}, manifest)
        if on_epoch is not None:
            on_epoch(row)
