"""The training loop: epochs, validation, best/last checkpoints, resume, and the final test."""

from __future__ import annotations

import datetime as dt
import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from stocksent.artifacts import (
    CONFIG,
    CURVE,
    METRICS,
    load_tensors,
    read_json,
    save_model_dir,
    save_tensors,
    save_weights,
)
from stocksent.atomic import write_json
from stocksent.batching import iterate_batches
from stocksent.config import TrainConfig
from stocksent.data import locate_dataset, read_labelled, sha256_file
from stocksent.errors import StocksentError
from stocksent.evaluation.metrics import classification_metrics
from stocksent.evaluation.plots import write_learning_curve
from stocksent.inference import network_logits
from stocksent.inference.workers import worker_pool
from stocksent.model import LSTMClassifier, predict_proba_sequences
from stocksent.splits import Splits, prepare_splits
from stocksent.training.blend import Blend, fit_blend, fit_linear, fold_blend_
from stocksent.training.calibration import Calibration, calibrate
from stocksent.version import __version__
from stocksent.vocab import Vocabulary

CHECKPOINT_WEIGHTS, CHECKPOINT_STATE = "checkpoint.safetensors", "checkpoint.json"
BEST_WEIGHTS = "checkpoint-best.safetensors"  # the best epoch before calibration


@dataclass
class TrainResult:
    out: Path
    metrics: dict


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise StocksentError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def make_optimizers(model: LSTMClassifier, config: TrainConfig) -> list[torch.optim.Optimizer]:
    """Each parameter group records its `initial_lr`, which `set_learning_rates` decays."""
    if config.optimizer == "adadelta":
        # TensorFlow's Adadelta defaults (rho 0.95, epsilon 1e-8), as the tutorial ran it.
        optimizers = [torch.optim.Adadelta(model.parameters(), lr=config.lr, rho=0.95, eps=1e-8)]
    else:
        sparse = [model.embedding.weight] if model.embedding.sparse else []
        ngrams = [model.ngrams.weight] if model.ngram_buckets else []
        dense = [p for p in model.parameters() if all(p is not q for q in sparse + ngrams)]
        optimizers = [torch.optim.Adam(dense, lr=config.lr)]
        if sparse:
            optimizers.append(torch.optim.SparseAdam(sparse, lr=config.lr))
        if ngrams:  # one weight per feature, each seen rarely: it needs larger steps than the LSTM
            adam = torch.optim.SparseAdam if model.ngrams.sparse else torch.optim.Adam
            optimizers.append(adam(ngrams, lr=config.ngram_lr))
    for opt in optimizers:
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]
    return optimizers


def set_learning_rates(optimizers: list[torch.optim.Optimizer], factor: float) -> None:
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = group["initial_lr"] * factor


def loss_function(name: str):
    if name == "mse":  # the tutorial's: squared error on the sigmoid output
        return lambda logits, y: nn.functional.mse_loss(torch.sigmoid(logits), y)
    return nn.functional.binary_cross_entropy_with_logits


def epoch_line(epoch: int, epochs: int, batches: int, row: dict) -> str:
    return (
        f"Epoch: {epoch}/{epochs}... Batch: {batches}/{batches}... Train Loss: {row['train_loss']:.3f}... "
        f"Train Accuracy: {row['train_accuracy']:.3f}... Val Accuracy: {row['val_accuracy']:.3f}"
    )


def run_manifest(config: TrainConfig, data_path: Path, data_sha: str, splits: Splits, skipped: int) -> dict:
    """Everything needed to know how a model was made and to treat new text the same way."""
    return {
        "stocksent_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "train": config.to_dict(),
        "text": config.text_options.to_dict(),
        "threshold": 0.5,
        "data": {
            "path": str(data_path),
            "sha256": data_sha,
            "split_seed": config.effective_split_seed,
            "max_examples": config.max_examples,
            "split": splits.sizes(),
            "skipped_unlabelled": skipped,
            "dropped_empty": splits.dropped_empty,
        },
    }


def optimizer_tensors(optimizers: list[torch.optim.Optimizer]) -> tuple[dict, list]:
    """Split optimizer state into tensors (safetensors) and plain values (JSON): no pickle."""
    tensors, plain = {}, []
    for k, opt in enumerate(optimizers):
        state = opt.state_dict()
        scalars = {}
        for pid, values in state["state"].items():
            for name, value in values.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim{k}.{pid}.{name}"] = value
                else:
                    scalars.setdefault(str(pid), {})[name] = value
        plain.append({"param_groups": state["param_groups"], "state_ids": list(state["state"]), "scalars": scalars})
    return tensors, plain


def restore_optimizers(optimizers: list[torch.optim.Optimizer], tensors: dict, plain: list) -> None:
    for k, (opt, saved) in enumerate(zip(optimizers, plain)):
        state = {pid: dict(saved["scalars"].get(str(pid), {})) for pid in saved["state_ids"]}
        for key, value in tensors.items():
            prefix, pid, name = key.split(".", 2)
            if prefix == f"optim{k}":
                state[int(pid)][name] = value
        opt.load_state_dict({"state": state, "param_groups": saved["param_groups"]})


def save_checkpoint(out: Path, model, optimizers, progress: dict) -> None:
    tensors, plain = optimizer_tensors(optimizers)
    tensors.update({f"model.{k}": v for k, v in model.state_dict().items()})
    tensors["rng.torch"] = torch.get_rng_state()
    save_tensors(out / CHECKPOINT_WEIGHTS, tensors)
    write_json(out / CHECKPOINT_STATE, {**progress, "optimizers": plain})


def load_checkpoint(out: Path, model, optimizers) -> dict:
    tensors = load_tensors(out / CHECKPOINT_WEIGHTS)
    progress = read_json(out / CHECKPOINT_STATE)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    restore_optimizers(optimizers, {k: v for k, v in tensors.items() if k.startswith("optim")}, progress["optimizers"])
    torch.set_rng_state(tensors["rng.torch"])
    return progress


def default_out_dir() -> Path:
    return Path("runs") / dt.datetime.now().strftime("%Y%m%d-%H%M%S")


# Options that may differ on resume: where things are and how fast they run, not what is trained.
RESUME_FREE = {"data", "out", "device", "num_threads", "resume"}


def resume_config(out: Path, config: TrainConfig) -> TrainConfig:
    """The options the run started with, so a resumed run ends where the first run would.

    Re-running the original command with `--resume` added is the normal way to resume, so options
    equal to the saved ones are fine; any that differ are refused, each named with both values.
    """
    if not (out / CHECKPOINT_STATE).is_file():
        raise StocksentError(f"nothing to resume in {out}: no {CHECKPOINT_STATE} (start without --resume)")
    saved = TrainConfig.from_dict(read_json(out / CONFIG)["train"])
    given, recorded = config.to_dict(), saved.to_dict()
    differ = [name for name in recorded if name not in RESUME_FREE and given[name] != recorded[name]]
    if differ:
        listed = "; ".join(
            f"--{name.replace('_', '-')} {given[name]!r} (the run started with {recorded[name]!r})" for name in differ
        )
        raise StocksentError(f"--resume continues the run with its own options; these differ: {listed}")
    saved.resume, saved.out, saved.device, saved.num_threads = True, str(out), config.device, config.num_threads
    if config.data is not None:
        saved.data = config.data
    return saved


SHARDS = 2  # every batch is split in halves, each with its own dropout generator (see train_one_epoch)


def shard_gradients(
    model: LSTMClassifier,
    params: list[torch.Tensor],
    criterion,
    ids: torch.Tensor,
    lengths: torch.Tensor,
    y: torch.Tensor,
    weight: float,
    seed: int,
) -> tuple[float, int, list[torch.Tensor]]:
    """Loss, correct count and gradients of one shard, its mean loss weighted by its share of the batch."""
    logits = model(ids, lengths, torch.Generator().manual_seed(seed))
    loss = criterion(logits, y)
    grads = torch.autograd.grad(loss * weight, params)
    return loss.item() * len(y), int(((logits.detach() >= 0) == (y >= 0.5)).sum()), list(grads)


def train_one_epoch(
    model: LSTMClassifier,
    optimizers: list[torch.optim.Optimizer],
    criterion,
    sequences: list[np.ndarray],
    labels: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    device: torch.device,
    desc: str = "",
    word_dropout: float = 0.0,
) -> tuple[float, float]:
    """One pass over every training message (the last short batch included); mean loss and accuracy.

    `word_dropout` turns that fraction of words into <unk>, so the model cannot lean on any single
    word and learns what unknown words look like (test messages have many).

    Each batch is computed as `SHARDS` halves whose gradients are summed into the batch's mean-loss
    gradient. On a CPU with two or more threads the halves run side by side, one core each: a
    batch's LSTM kernels are too small to split well across cores, two independent halves are not.
    The halves draw dropout masks from their own seeded generators, so the result is the same on
    one core or several.
    """
    model.train()
    loss_sum = correct = seen = 0.0
    params = [p for p in model.parameters() if p.requires_grad]
    pool = worker_pool(SHARDS) if device.type == "cpu" and 1 < SHARDS <= torch.get_num_threads() else None
    batches = iterate_batches(sequences, batch_size, rng)
    for batch in tqdm(
        batches, total=math.ceil(len(sequences) / batch_size), file=sys.stderr, desc=desc, leave=False, disable=None
    ):
        y = torch.from_numpy(labels[batch.index])
        ids = batch.ids
        if word_dropout:
            ids = ids.masked_fill((torch.rand(ids.shape) < word_dropout) & (ids > 1), 1)
        seeds = rng.integers(2**62, size=SHARDS).tolist()
        bounds = np.linspace(0, len(y), SHARDS + 1).astype(int)
        jobs = []
        for lo, hi, seed in zip(bounds[:-1], bounds[1:], seeds):
            if lo == hi:
                continue
            lengths = batch.lengths[lo:hi]
            args = (
                model,
                params,
                criterion,
                ids[lo:hi, : int(lengths.max())].to(device),
                lengths,
                y[lo:hi].to(device),
                (hi - lo) / len(y),
                seed,
            )
            jobs.append(pool.submit(shard_gradients, *args) if pool else args)
        results = [job.result() if pool else shard_gradients(*job) for job in jobs]
        for p, *grads in zip(params, *(grads for _, _, grads in results)):
            p.grad = sum(grads[1:], grads[0])
        for opt in optimizers:
            opt.step()
        loss_sum += sum(r[0] for r in results)
        correct += sum(r[1] for r in results)
        seen += len(y)
    return loss_sum / seen, correct / seen


def calibrate_on_validation(
    out: Path, model: LSTMClassifier, val_x: list[np.ndarray], val_y: np.ndarray, device: torch.device
) -> Calibration:
    """Temperature scaling and the decision threshold, both fitted on validation data only.

    The temperature is folded into the output layer (logit / T), so every backend (PyTorch, ONNX,
    the fast path) serves calibrated probabilities with no extra step.
    """
    calibration = calibrate(network_logits(model, val_x, device=device), val_y)
    model.scale_logit_(1.0 / calibration.temperature)
    save_weights(out, model)
    config = read_json(out / CONFIG)
    write_json(out / CONFIG, {**config, "temperature": calibration.temperature, "threshold": calibration.threshold})
    return calibration


def blend_on_validation(
    model: LSTMClassifier,
    config: TrainConfig,
    splits: Splits,
    train_x: list[np.ndarray],
    val_x: list[np.ndarray],
    device: torch.device,
) -> Blend | None:
    """Fold the logistic regression over the model's n-grams into it (blend.py); None where off or impossible."""
    if not (config.linear_blend and config.ngram_buckets):
        return None
    one_class = [
        name
        for name, part in (("training", splits.train), ("validation", splits.val))
        if len(np.unique(part.labels)) < 2
    ]
    if one_class:
        log(f"blend skipped: the {' and '.join(one_class)} split holds one class only")
        return None
    linear = fit_linear(
        train_x,
        splits.train.labels,
        val_x,
        splits.val.labels,
        model.embedding.num_embeddings,
        config.ngram_buckets,
        config.seed,
    )
    blend = fit_blend(network_logits(model, val_x, device=device), linear, splits.val.labels)
    fold_blend_(model, linear, blend)
    log(
        f"blend: validation accuracy {blend.val_accuracy_model:.4f} (model) and {blend.val_accuracy_linear:.4f} "
        f"(logistic regression, C={blend.c:g}) -> {blend.val_accuracy_blend:.4f}"
    )
    return blend


def train(config: TrainConfig, on_epoch: Callable[[dict], None] | None = None) -> TrainResult:
    """Train, keep the best epoch by validation accuracy, evaluate it on the test split.

    `on_epoch(row)` sees each epoch's history row after its checkpoint is saved (tuning prunes from
    it; raising there stops training, and `resume` can continue from that epoch).
    """
    config.validate()
    out = Path(config.out) if config.out else default_out_dir()
    if config.resume:
        config = resume_config(out, config)
    elif (out / CONFIG).exists():
        raise StocksentError(f"{out} already holds a model: choose another --out, delete it, or pass --resume")
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    device = resolve_device(config.device)
    started = time.perf_counter()

    data_path = locate_dataset(config.data).resolve()
    config.data = str(data_path)  # recorded absolute, so evaluate and resume work from anywhere
    data_sha = sha256_file(data_path)
    data = read_labelled(data_path)
    if data.skipped:
        log(f"skipped {data.skipped} rows without a bullish/bearish label")
    splits = prepare_splits(data, config.text_options, config.effective_split_seed, config.max_examples)
    if min(splits.sizes().values()) == 0:
        raise StocksentError(f"{data_path} has too few usable messages to split 80/10/10 ({len(data.labels)} labelled)")
    log(f"data {data_path}: train {len(splits.train)}, validation {len(splits.val)}, test {len(splits.test)}")

    torch.manual_seed(config.seed)
    if config.resume:
        vocab = Vocabulary.from_dict(read_json(out / "vocab.json"))
        if read_json(out / CONFIG)["data"]["sha256"] != data_sha:
            raise StocksentError(f"{data_path} is not the file this run started with (sha256 differs)")
    else:
        vocab = Vocabulary.build(splits.train.tokens, config.min_count)
    train_x, val_x = vocab.encode_many(splits.train.tokens), vocab.encode_many(splits.val.tokens)
    model = LSTMClassifier(
        len(vocab),
        config.embed_size,
        config.lstm_sizes,
        config.keep_prob,
        sparse_embedding=config.optimizer == "adam",
        ngram_buckets=config.ngram_buckets,
    ).to(device)
    optimizers = make_optimizers(model, config)
    manifest = run_manifest(config, data_path, data_sha, splits, data.skipped)
    progress = {"epoch": 0, "history": [], "best_epoch": 0, "best_val_accuracy": -1.0}
    if config.resume:
        progress = load_checkpoint(out, model, optimizers)
        started -= progress.get("elapsed", 0.0)
        log(f"resuming {out} after epoch {progress['epoch']}")
    else:
        save_model_dir(out, model, manifest, vocab)
        save_checkpoint(out, model, optimizers, {**progress, "elapsed": 0.0})
    criterion = loss_function(config.loss)
    n_batches = math.ceil(len(train_x) / config.batch_size)

    for epoch in range(progress["epoch"] + 1, config.epochs + 1):
        if config.patience and epoch - progress["best_epoch"] > config.patience and progress["best_epoch"]:
            log(f"early stop: no better validation accuracy for {config.patience} epochs")
            break
        epoch_start = time.perf_counter()
        rng = np.random.default_rng([config.seed, epoch])  # per-epoch order: resume needs no RNG state
        set_learning_rates(optimizers, config.lr_decay ** (epoch - 1))
        train_loss, train_accuracy = train_one_epoch(
            model,
            optimizers,
            criterion,
            train_x,
            splits.train.labels,
            config.batch_size,
            rng,
            device,
            desc=f"epoch {epoch}/{config.epochs}",
            word_dropout=config.word_dropout,
        )
        val_p = predict_proba_sequences(model, val_x, device=device)
        val_y = torch.from_numpy(splits.val.labels)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_accuracy": train_accuracy,
            "val_loss": float(
                criterion(torch.logit(torch.from_numpy(val_p).double().clamp(1e-7, 1 - 1e-7)), val_y.double())
            ),
            "val_accuracy": float(((val_p >= 0.5) == (splits.val.labels >= 0.5)).mean()),
            "seconds": time.perf_counter() - epoch_start,
        }
        progress["history"].append(row)
        log(epoch_line(epoch, config.epochs, n_batches, row))
        if row["val_accuracy"] > progress["best_val_accuracy"]:
            progress["best_epoch"], progress["best_val_accuracy"] = epoch, row["val_accuracy"]
            save_tensors(out / BEST_WEIGHTS, model.state_dict())
            save_weights(out, model)  # usable while training goes on; calibrated at the end
        progress["epoch"] = epoch
        save_checkpoint(out, model, optimizers, {**progress, "elapsed": time.perf_counter() - started})
        if on_epoch is not None:
            on_epoch(row)

    best = LSTMClassifier(
        len(vocab), config.embed_size, config.lstm_sizes, config.keep_prob, ngram_buckets=config.ngram_buckets
    ).to(device)
    best.load_state_dict(load_tensors(out / BEST_WEIGHTS))
    blend = blend_on_validation(best, config, splits, train_x, val_x, device)
    calibration = calibrate_on_validation(out, best, val_x, splits.val.labels, device)
    test_p = predict_proba_sequences(best, vocab.encode_many(splits.test.tokens), device=device)
    metrics = {
        "history": progress["history"],
        "best_epoch": progress["best_epoch"],
        "test": classification_metrics(splits.test.labels, test_p, calibration.threshold),
        "split": splits.sizes(),
        "calibration": calibration.to_dict(),
        "blend": blend.to_dict() if blend else None,
        "seconds_total": time.perf_counter() - started,
    }
    write_json(out / METRICS, metrics)
    write_learning_curve(out / CURVE, progress["history"])
    return TrainResult(out, metrics)
