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
from stocksent.errors import StocksentError
from stocksent.inference import network_logits
from stocksent.model import LSTMClassifier
from stocksent.training.checkpoint import load_checkpoint, resume_config, save_checkpoint, saved_run
from stocksent.training.distributed import (
    World,
    check_same_data,
    device_of,
    fingerprint,
    joined,
    launch,
    launched,
    share_training_state,
    threads_per_process,
)
from stocksent.training.epochs import (
    epoch_line,
    loss_function,
    make_optimizers,
    resolve_device,
    set_learning_rates,
    train_one_epoch,
)
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
    metrics: dict  # rank 0 alone finalises; every rank of a distributed run returns its metrics
    _model: SentimentModel | None = field(default=None, repr=False)
    rank: int = 0

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
    if config.nproc > 1 and not launched():
        return train_in_processes(config, on_epoch)
    with joined(resolve_device(config.device).type) as world:
        return train_rank(config, on_epoch, world)


def train_in_processes(config: TrainConfig, on_epoch: Callable[[dict], None] | None = None) -> TrainResult:
    """`train` on `config.nproc` processes of this machine (distributed.launch): rank 0's result."""
    if on_epoch is not None:
        raise StocksentError("on_epoch cannot reach the processes of nproc > 1; train with nproc=1")
    directory, metrics = launch(distributed_rank, (config.to_dict(),), config.nproc)[0]
    return TrainResult(Path(directory), metrics)


def distributed_rank(options: dict) -> tuple[str, dict]:
    """One process that `train_in_processes` started (module level: the launcher pickles it)."""
    result = train(TrainConfig.from_dict(options))
    return str(result.directory), result.metrics


def train_rank(config: TrainConfig, on_epoch: Callable[[dict], None] | None, world: World) -> TrainResult:
    """`train` as this process's part of `world`: every rank trains, rank 0 alone writes."""
    if world.size > 1 and config.nproc not in (1, world.local_size):
        raise StocksentError(f"--nproc {config.nproc} under a launcher of {world.local_size} processes: leave it out")
    out = world.broadcast(Path(config.out) if config.out else default_out_dir())
    if config.data is not None:
        from stocksent.readers import expand_inputs
        from stocksent.writers import refuse_inputs

        refuse_inputs([out], expand_inputs(config.data), directories=True)
    with world.main_context(claimed(out, config.resume)):
        started = time.perf_counter()
        recorded_sha = None
        if config.resume:  # rank 0 reads the run directory (it may be on its machine only)

            def resumed(config: TrainConfig = config) -> tuple[TrainConfig, str]:
                if config.init_from:  # those options came from the base model, not from the flags
                    config = taken_from_base(config, saved_run(out)["train"])
                return resume_config(out, config), saved_run(out)["data"]["sha256"]

            config, recorded_sha = world.from_main(resumed)
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        elif world.size > 1:
            torch.set_num_threads(threads_per_process(world))
        device = device_of(world, resolve_device(config.device))
        base = None
        if config.init_from and not config.resume:
            base = read_base(config.init_from)
            config = configured_like(config, base)
        # Other ranks build the vocabulary themselves (the run directory may be on rank 0's machine only).
        data = world.agreed(
            lambda: prepare_data(config, out, recorded_sha if world.is_main else None, base.vocab if base else None)
        )
        if world.size > 1:
            sizes = (len(data.train_x), len(data.val_x), len(data.test_x))
            check_same_data(world, fingerprint(data.vocab.to_dict(), sizes))
        # Recorded absolute, so evaluate and resume work from anywhere.
        paths = [str(p) for p in data.loaded.paths]
        config.data = paths[0] if len(paths) == 1 else paths
        manifest = run_manifest(config, data)
        if config.resume and world.is_main:  # the run keeps the date it was started
            manifest["created"] = saved_run(out).get("created", manifest["created"])

        torch.manual_seed(config.seed)
        # NCCL has no sparse all-reduce: GPU ranks train a dense embedding.
        sparse = config.optimizer == "adam" and not (world.size > 1 and device.type == "cuda")
        if base is not None:
            model = initial_network(base, data.vocab, sparse_embedding=sparse)
        else:
            model = LSTMClassifier.from_config(model_config(config, data), sparse_embedding=sparse)
        model.to(device)
        optimizers = make_optimizers(model, config)
        progress = {"epoch": 0, "history": [], "best_epoch": 0, "best_val_accuracy": -1.0}
        if not world.is_main:
            pass
        elif config.resume:
            progress = load_checkpoint(out, model, optimizers)
            started -= progress.get("elapsed", 0.0)
            log.info(f"resuming {out} after epoch {progress['epoch']}")
        else:
            write_json(out / VOCAB, data.vocab.to_dict())
            save_checkpoint(out, model, optimizers, {**progress, "elapsed": 0.0}, manifest)
        progress = share_training_state(world, model, optimizers, progress)

        run_epochs(out, model, optimizers, config, data, progress, manifest, device, started, on_epoch, world)

        def finish() -> dict:
            from stocksent.training.finalise import finalise  # here: scikit-learn is for rank 0 alone

            best = LSTMClassifier.from_config(model.config).to(device)
            best.load_state_dict(load_tensors(out / BEST_WEIGHTS))
            return finalise(out, best, config, data, manifest, progress, device, time.perf_counter() - started)

        # Rank 0 finalises while the others wait for it, and every rank returns its metrics: no rank leaves
        # the group while another works in it, and a launcher that keeps whichever rank's return value
        # came last (Spark's TorchDistributor: each rank writes the one output file) gets the same one.
        metrics = world.from_main(finish)
    return TrainResult(out, metrics, rank=world.rank)


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
    world: World | None = None,
) -> None:
    """Epochs from the one after `progress["epoch"]`: train, validate, keep the best, checkpoint.

    In a `world` of several ranks all train; validation is shared out and gathered, rank 0 decides
    early stopping for all, logs and checkpoints.
    """
    world = world or World()
    criterion = loss_function(config.loss)
    n_batches = math.ceil(len(data.train_x) / config.batch_size)
    val_y = data.splits.val.labels
    for epoch in range(progress["epoch"] + 1, config.epochs + 1):
        stop = bool(config.patience and epoch - progress["best_epoch"] > config.patience and progress["best_epoch"])
        if world.broadcast(stop):
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
            world=world,
        )
        val_logits = world.gather_rows(lambda part: network_logits(model, part, device=device), data.val_x)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_accuracy": train_accuracy,
            "val_loss": float(criterion(torch.from_numpy(val_logits).double(), torch.from_numpy(val_y).double())),
            "val_accuracy": float(((val_logits >= 0) == (val_y >= 0.5)).mean()),
            "seconds": time.perf_counter() - epoch_start,
        }
        progress["history"].append(row)
        if world.is_main:
            log.info(epoch_line(epoch, config.epochs, n_batches, row))
        if row["val_accuracy"] > progress["best_val_accuracy"]:
            progress["best_epoch"], progress["best_val_accuracy"] = epoch, row["val_accuracy"]
            if world.is_main:
                save_tensors(out / BEST_WEIGHTS, model.state_dict())
        progress["epoch"] = epoch
        if world.is_main:
            save_checkpoint(out, model, optimizers, {**progress, "elapsed": time.perf_counter() - started}, manifest)
        if on_epoch is not None:
            on_epoch(row)
