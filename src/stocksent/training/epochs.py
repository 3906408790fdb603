"""One epoch of training and its validation: optimizers, loss, the sharded batch step, the epoch line."""

from __future__ import annotations

import math
import sys

import numpy as np
import torch
from torch import nn

from stocksent.batching import iterate_batches
from stocksent.config import TrainConfig
from stocksent.errors import StocksentError
from stocksent.inference.workers import worker_pool
from stocksent.model import LSTMClassifier
from stocksent.training.distributed import World

SHARDS = 2  # every batch is split in halves, each with its own dropout generator (see train_one_epoch)


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
    world: World | None = None,
) -> tuple[float, float]:
    """One pass over every training message (the last short batch included); mean loss and accuracy.

    `word_dropout` turns that fraction of words into <unk>, so the model cannot lean on any single
    word and learns what unknown words look like (test messages have many).

    Each batch is computed as `SHARDS` halves whose gradients are summed into the batch's mean-loss
    gradient. On a CPU with two or more threads the halves run side by side, one core each: a
    batch's LSTM kernels are too small to split well across cores, two independent halves are not.
    The halves draw dropout masks from their own seeded generators, so the result is the same on
    one core or several.

    In a `world` of N > 1 ranks (distributed.py) every rank draws the same batches (the same `rng`)
    and each batch is cut into max(SHARDS, N) parts, rank r computing parts r, r + N, ...; the parts'
    gradients are summed across ranks. Two ranks thus train exactly the model of one process (the
    same halves, the same dropout masks), and the global batch stays `batch_size` whatever N is.
    """
    world = world or World()
    model.train()
    loss_sum = correct = seen = 0.0
    params = [p for p in model.parameters() if p.requires_grad]
    sparse = [any(p is m.weight and m.sparse for m in model.modules() if isinstance(m, nn.Embedding)) for p in params]
    parts = max(SHARDS, world.size)
    mine = range(world.rank, parts, world.size)
    pool = worker_pool(len(mine)) if device.type == "cpu" and 1 < len(mine) <= torch.get_num_threads() else None
    batches = iterate_batches(sequences, batch_size, rng)
    from tqdm import tqdm

    for batch in tqdm(
        batches,
        total=math.ceil(len(sequences) / batch_size),
        file=sys.stderr,
        desc=desc,
        leave=False,
        disable=None if world.is_main else True,
    ):
        y = torch.from_numpy(labels[batch.index])
        ids = batch.ids
        if word_dropout:
            ids = ids.masked_fill((torch.rand(ids.shape) < word_dropout) & (ids > 1), 1)
        seeds = rng.integers(2**62, size=parts).tolist()
        bounds = np.linspace(0, len(y), parts + 1).astype(int)
        jobs = []
        for k in mine:
            lo, hi, seed = bounds[k], bounds[k + 1], seeds[k]
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
        local = [sum(grads[1:], grads[0]) for grads in zip(*(grads for _, _, grads in results))] or [None] * len(params)
        for p, grad in zip(params, world.sum_gradients(params, local, sparse)):
            p.grad = grad
        for opt in optimizers:
            opt.step()
        loss_sum += sum(r[0] for r in results)
        correct += sum(r[1] for r in results)
        seen += sum(hi - lo for lo, hi in ((bounds[k], bounds[k + 1]) for k in mine))
    loss_sum, correct, seen = world.sum([loss_sum, correct, seen])
    return loss_sum / seen, correct / seen
