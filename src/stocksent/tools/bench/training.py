"""The bench's training arms on train's own split: our pipeline against the tutorial's padded way.

Training: one epoch of our pipeline (length buckets, Adam with sparse embedding gradients) against the
tutorial's way (every message left-padded to 244 words, dense gradients, Adadelta + MSE), on the
tutorial's architecture (embedding 300, LSTM 128/64, batch 256) and the same messages.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

TUTORIAL_WIDTH = 244  # the tutorial's padded length: its longest message


@dataclass
class BenchData:
    """What the bench trains and predicts on: train's splits (the one split path), the vocabulary of
    the training part, and that part as ids."""

    splits: Any  # splits.Splits
    vocab: Any  # vocab.Vocabulary
    train_x: list
    train_y: Any


def bench_config(max_examples: int | None = None):
    """The default preset on the tutorial's architecture (embedding 300, LSTM 128/64, batch 256)."""
    from stocksent.config import preset

    return preset("default", batch_size=256, embed_size=300, lstm_sizes=(128, 64), max_examples=max_examples)


def bench_data(data_path, config) -> BenchData:
    """train's own split of `data_path` with `config`'s text options, seed and max_examples: the bench
    never trains on a message of its test split (duplicates by id, then text, dropped as train does)."""
    from stocksent.splits import load_splits
    from stocksent.vocab import Vocabulary

    splits = load_splits(data_path, config.text_options, config.effective_split_seed, config.max_examples).splits
    vocab = Vocabulary.build(splits.train.tokens, config.min_count)
    return BenchData(splits, vocab, vocab.encode_many(splits.train.tokens), splits.train.labels)


def train_arm(model, config, train_x, train_y, device, max_batches: int | None) -> dict:
    """Our pipeline: `training.train_one_epoch` over the whole split, or over `max_batches` batches
    of it (then extrapolated to the whole split)."""
    import numpy as np

    from stocksent.training.epochs import loss_function, make_optimizers, train_one_epoch

    optimizers, criterion = make_optimizers(model, config), loss_function(config.loss)
    batches = math.ceil(len(train_x) / config.batch_size)
    rng = np.random.default_rng(config.seed)
    x, y, measured = train_x, train_y, batches
    if max_batches and max_batches < batches:
        pick = rng.permutation(len(train_x))[: max_batches * config.batch_size]
        x, y, measured = [train_x[i] for i in pick], train_y[pick], max_batches
    started, cpu = time.perf_counter(), time.process_time()
    train_one_epoch(
        model, optimizers, criterion, x, y, config.batch_size, rng, device, word_dropout=config.word_dropout
    )
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "train_epoch_seconds": seconds * batches / measured,
        "train_batches_timed": measured,
        "train_epoch_cpu_seconds": cpu * batches / measured,
        "train_batches_per_epoch": batches,
        "train_epoch_method": "measured" if measured == batches else f"extrapolated from {measured} batches",
        "optimizers": optimizers,
        "criterion": criterion,
    }


def left_padded(sequences, index, width: int):
    import numpy as np
    import torch

    ids = np.zeros((len(index), width), dtype=np.int64)
    for row, i in enumerate(index):
        seq = sequences[i][-width:]
        if len(seq):
            ids[row, width - len(seq) :] = seq
    return torch.from_numpy(ids), torch.full((len(index),), width, dtype=torch.int64)


def padded_arm(vocab_size: int, train_x, train_y, device, batch_size: int, timed_batches: int) -> dict:
    """The tutorial's way on the same model shape and messages: each message left-padded to 244
    words, the output read at the last position, no packing or buckets, dense embedding gradients,
    Adadelta on squared error. A fixed number of random batches (after one warm-up), extrapolated."""
    import numpy as np
    import torch

    from stocksent.model import LSTMClassifier
    from stocksent.training.epochs import loss_function

    torch.manual_seed(0)
    model = LSTMClassifier(vocab_size, 300, (128, 64), 0.5).to(device).train()
    optimizer, criterion = torch.optim.Adadelta(model.parameters(), lr=0.1), loss_function("mse")
    order = np.random.default_rng(0).permutation(len(train_x))
    times, cpu_times = [], []
    for b in range(timed_batches + 1):
        index = order[b * batch_size : (b + 1) * batch_size]
        ids, lengths = left_padded(train_x, index, TUTORIAL_WIDTH)
        y = torch.from_numpy(train_y[index]).to(device)
        started, cpu = time.perf_counter(), time.process_time()
        loss = criterion(model(ids.to(device), lengths), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()  # waits for the device
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu)
    per_batch = float(np.median(times[1:]))
    batches = math.ceil(len(train_x) / batch_size)
    return {
        "padded_epoch_seconds": per_batch * batches,
        "padded_epoch_cpu_seconds": float(np.median(cpu_times[1:])) * batches,
        "padded_epoch_method": f"median of {timed_batches} batches after 1 warm-up, times {batches} batches",
    }
