"""The one split path: labelled messages to the three splits every command that trains or compares uses.

train, evaluate, tune, bench, baseline and report all split here, the same way: the files read once
(`corpus.read_corpus`: duplicates dropped by id, then by text from an earlier file), the first
`max_examples` kept, messages without tokens dropped, then one of two rules:
- `random` (the default): a seeded 80/10/10 permutation (`split_indices`, the tutorial's);
- `time`: the oldest 80% train, the next 10% validate, the newest 10% test, the honest estimate
  for a model deployed on messages that come after its training data.
A run records which, with the data files' names and sha256, so `recorded_splits` rebuilds the very
same splits later. `split_positions` is the rule on one group of messages; splitting each group
(a file, or the values of a column such as `source`) by the same seeded rule is that function
called per group, the positions joined.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stocksent.corpus import NO_TIME, Corpus, expand_data, read_corpus
from stocksent.errors import StocksentError
from stocksent.text import TextOptions
from stocksent.tokens import LazyTokens, TokenArrays

SPLITS = ("random", "time")


@dataclass
class Split:
    messages: Sequence[str] | None  # raw text, for reports and the baseline (None: not kept, as in training)
    tokens: Sequence[list[str]]  # a list per message (decoded on demand where `encoded` holds the ids)
    labels: np.ndarray  # float32, 1.0 bullish
    encoded: TokenArrays | None = None  # the messages' ids into the corpus' `words` (tokens.py)
    times: np.ndarray | None = None  # int64 ns UTC (corpus.NO_TIME: unknown), where the data have times
    tickers: list[str] | None = None  # where asked for (evaluate --by ticker)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Splits:
    train: Split
    val: Split
    test: Split
    dropped_empty: int
    words: list[str] | None = None  # what the splits' `encoded` ids index (the corpus' words)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def split_indices(
    n: int, seed: int, fractions: Sequence[float] = (0.8, 0.1, 0.1)
) -> tuple[list[int], list[int], list[int]]:
    """Train/validation/test indices from one seeded permutation, so a seed always gives the same split.

    Sizes are int(n * fractions[0]) and int(n * fractions[1]); test takes the rest.
    """
    if n < 0:
        raise StocksentError(f"cannot split {n} rows; the number of rows must be >= 0")
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise StocksentError(
            f"split fractions {tuple(fractions)} are invalid; give three non-negative numbers summing to 1"
        )
    order = np.random.default_rng(seed).permutation(n).tolist()
    n_train = int(n * fractions[0])
    n_val = int(n * fractions[1])
    return order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]


def split_sha256(messages: Sequence[str], labels: Sequence[float]) -> str:
    """Fingerprint of one split's messages and labels, in order: equal fingerprints, identical split."""
    payload = json.dumps([list(messages), [int(y) for y in labels]], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def splits_sha256(splits: Splits) -> dict[str, str]:
    """Fingerprints of the train, validation and test splits (the baseline and report compare them)."""
    return {
        name: split_sha256(part.messages, part.labels)
        for name, part in (("train", splits.train), ("val", splits.val), ("test", splits.test))
    }


def split_positions(n: int, split: str, seed: int, times: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """Positions of the train, validation and test messages among `n`.

    random: `data.split_indices` (a seeded permutation; the tutorial's file splits exactly as it
    always has). time: ordered by time (ties keep input order), oldest int(0.8 n) train, next
    int(0.1 n) validation, the rest (newest) test.
    """
    if split == "random":
        return tuple(np.asarray(part, dtype=np.int64) for part in split_indices(n, seed))
    if split != "time":
        raise StocksentError(f"--split must be one of {', '.join(SPLITS)}; got {split!r}")
    if times is None:
        raise StocksentError(
            "--split time needs a time per message, and no input has a created_at, date, time or timestamp "
            "column; use --split random"
        )
    missing = int((times == NO_TIME).sum())
    if missing:
        raise StocksentError(
            f"--split time needs a time per message: {missing} of {n} messages have none or an unreadable one "
            "(ISO 8601 expected, e.g. 2020-01-31 or 2020-01-31T14:05:00Z); fix them or use --split random"
        )
    order = np.argsort(times, kind="stable")
    n_train, n_val = int(n * 0.8), int(n * 0.1)
    return order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]


def corpus_splits(corpus: Corpus, split: str, seed: int) -> Splits:
    """The corpus' messages as three splits, their ids kept in place (no copies)."""
    parts = split_positions(len(corpus), split, seed, corpus.times)

    def part(index: np.ndarray) -> Split:
        encoded = corpus.tokens.subset(index)
        return Split(
            messages=None if corpus.texts is None else corpus.texts.subset(index),
            tokens=LazyTokens(corpus.words, encoded),
            labels=corpus.labels[index].astype(np.float32),
            encoded=encoded,
            times=None if corpus.times is None else corpus.times[index],
            tickers=None if corpus.tickers is None else [corpus.tickers[i] for i in index.tolist()],
        )

    return Splits(*(part(index) for index in parts), dropped_empty=corpus.dropped_empty, words=corpus.words)


def files_sha256(files: Sequence[dict]) -> str:
    """One fingerprint of the data: the file's own sha256 for one file, else a hash of all of theirs in order."""
    if len(files) == 1:
        return files[0]["sha256"]
    return hashlib.sha256("\n".join(f["sha256"] for f in files).encode()).hexdigest()


@dataclass
class LoadedSplits:
    """Labelled files found, hashed, read and split: what every command that trains or compares needs."""

    path: Path  # the first file, absolute, so a recorded path works from any directory
    sha256: str  # `files_sha256`
    skipped: int  # rows without a bullish/bearish label
    splits: Splits
    files: list[dict]  # {"path", "sha256", "rows", "labelled"} per file
    split: str = "random"
    duplicates: int = 0
    bad_rows: int = 0

    @property
    def words(self) -> list[str] | None:
        """What the splits' `encoded` ids index."""
        return self.splits.words

    @property
    def paths(self) -> list[Path]:
        return [Path(f["path"]) for f in self.files]

    def record(self, split_seed: int, max_examples: int | None) -> dict:
        """config.json's "data": enough to rebuild exactly these splits later (`recorded_splits`)."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "files": self.files,
            "split_by": self.split,
            "split_seed": split_seed,
            "max_examples": max_examples,
            "split": self.splits.sizes(),
            "skipped_unlabelled": self.skipped,
            "dropped_empty": self.splits.dropped_empty,
            "duplicates": self.duplicates,
            "bad_rows": self.bad_rows,
        }


def load_splits(
    data: str | os.PathLike | Sequence[str | os.PathLike] | None,
    options: TextOptions,
    seed: int,
    max_examples: int | None = None,
    split: str = "random",
    keep_text: bool = True,
    keep_tickers: bool = False,
    files: list[Path] | None = None,
    corpus: Corpus | None = None,
) -> LoadedSplits:
    """Find the labelled files (None: $STOCKSENT_DATA, the cache or the download), read (and hash) them
    once, split them.

    `data`: a path, a directory, a glob, or a list of those (corpus.py: formats, duplicates).
    `keep_text=False` keeps only word ids (training); `files` skips the search (already expanded);
    `corpus`: those files already read, whole (`read_corpus(..., drop_empty=False)`), so they are not
    read again.

    >>> loaded = load_splits(None, TextOptions(), seed=1)  # doctest: +SKIP
    >>> loaded.splits.sizes()  # doctest: +SKIP
    {'train': 77572, 'val': 9696, 'test': 9698}
    """
    from stocksent.dataset import locate_dataset

    if files is None:
        files = [locate_dataset(None).resolve()] if data is None else expand_data(data)
    if corpus is None:
        corpus = read_corpus(files, options, max_examples, keep_text=keep_text, keep_tickers=keep_tickers, files=files)
    else:
        corpus = corpus.select(max_examples)
    splits = corpus_splits(corpus, split, seed)
    where = str(files[0]) if len(files) == 1 else f"the {len(files)} input files"
    if min(splits.sizes().values()) == 0:
        labelled = sum(f["labelled"] for f in corpus.files)
        raise StocksentError(f"{where} has too few usable messages to split 80/10/10 ({labelled} labelled)")
    return LoadedSplits(
        path=files[0],
        sha256=files_sha256(corpus.files),
        skipped=corpus.skipped,
        splits=splits,
        files=corpus.files,
        split=split,
        duplicates=corpus.duplicates,
        bad_rows=corpus.bad_rows,
    )


def recorded_entries(recorded: dict) -> list[dict]:
    """config.json's "data" record as its list of files ({"path", "sha256", ...}), in training's order."""
    return list(recorded.get("files") or [])


def recorded_files(recorded: dict, data_path=None, sha256: dict[str, str] | None = None) -> list[Path]:
    """The files a model was trained on, in the recorded order, each checked by its sha256.

    `data_path` (a path, directory, glob or list) points at them where they moved since training;
    files are matched by content, so renamed copies are found too. `sha256` ({path: digest}) are
    digests already taken (by the read that will be used), so no file is hashed twice.
    """
    from stocksent.dataset import sha256_file

    files = recorded_entries(recorded)
    if not files and not data_path:
        raise StocksentError("no data file recorded with this model; pass --data PATH")
    if data_path:
        given = expand_data(data_path)
    else:
        given = [Path(f["path"]) for f in files]
        for path in given:
            if not path.is_file():
                raise StocksentError(
                    f"training data not found: {path}; pass --data PATH of the file the model was trained on"
                )
    by_sha = {}
    for path in given:
        by_sha.setdefault((sha256 or {}).get(str(path)) or sha256_file(path), path)
    found = []
    for f in files:
        if f.get("sha256") not in by_sha:
            shown = given[0] if len(given) == 1 else f["path"]
            raise StocksentError(
                f"{shown} is not the file the model was trained on (its sha256 differs): "
                "the test split cannot be rebuilt from it"
                if len(files) == 1
                else f"{shown} (one of the model's training files) is not among the files given (no file with "
                "its sha256): the test split cannot be rebuilt without it"
            )
        found.append(by_sha[f["sha256"]])
    return found


def recorded_splits(
    recorded: dict, options: TextOptions, data_path=None, keep_tickers: bool = False, corpus: Corpus | None = None
) -> Splits:
    """The splits a model was trained and measured on, rebuilt from config.json's "data" record.

    Only the very files the model was trained on give the same split, so their sha256 are checked;
    `data_path` points at them where they moved since training. `corpus`: `data_path` already read
    whole (`read_corpus(..., drop_empty=False)`, with `options`), used when it holds those files in
    training's order, so they are neither read nor hashed again.
    """
    digests = {f["path"]: f["sha256"] for f in corpus.files} if corpus is not None else None
    files = recorded_files(recorded, data_path, digests)
    if corpus is not None and [f["path"] for f in corpus.files] != [str(p) for p in files]:
        corpus = None  # given in another order than training's: read again in that order
    loaded = load_splits(
        None,
        options,
        recorded["split_seed"],
        recorded.get("max_examples"),
        split=recorded.get("split_by", "random"),
        keep_tickers=keep_tickers,
        files=files,
        corpus=corpus,
    )
    return loaded.splits
