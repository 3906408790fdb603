"""Labelled messages from many files, deduplicated, tokenised into flat NumPy arrays.

What training, evaluation and the baseline read. Every file the streaming readers know (CSV,
JSON Lines, StockTwits API JSON pages, Parquet, each optionally gzip'd; directories and globs)
is read batch by batch (`stocksent.readers.iter_batches`), labelled rows are normalised
there and then, and only word ids are kept: one int32 array of all messages' ids end to end plus
an offsets array (`TokenArrays`), never a Python list per message or per word. For 10M messages of
~15 words that is ~0.7 GB instead of ~8 GB of lists of strings (benchmarks/train_scale.py).

Columns are found and read by `stocksent.columns` (the rules every command shares), so
StockEmotions, StockTwits API exports and the tutorial's file need no mapping: the text is
`message` (else `body`, `text`), the label `sentiment` (bullish/bearish in any case, 1/0,
true/false; the API's nested tag is flattened by the reader), the time `created_at`/`date`/...,
the id `id`/`message_id`, the tickers `ticker`/`symbol`/`symbols` or the cashtags in the text.

Duplicates are kept once: rows with the same message id anywhere; rows without an id whose exact
text was already read from an earlier file. Identical texts inside one file without ids are kept:
they are separate posts (1,022 messages of the tutorial's file are just "$SPY", with either tag).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stocksent.columns import (
    ID_COLUMNS,
    LABEL_COLUMNS,
    NO_TIME,
    TICKER_COLUMNS,
    TIME_COLUMNS,
    cashtags,
    find_column,
    id_keys,
    parse_labels,
    parse_times,
    resolve_text_column,
    ticker_lists,
)
from stocksent.errors import StocksentError
from stocksent.text import TextOptions, normalise_flat
from stocksent.tokens import LazyTexts, TokenArrays

log = logging.getLogger(__name__)


@dataclass
class Corpus:
    """Usable labelled messages in input order, after duplicates and empty messages were dropped.

    `tokens` holds ids into `words` (every distinct token, in order of first appearance), not a
    model's vocabulary: `Vocabulary` ids come later, from the training split only.
    """

    files: list[dict]  # {"path", "sha256", "rows", "labelled"} per file, in input order
    words: list[str]
    tokens: TokenArrays
    labels: np.ndarray  # int8, 1 bullish
    times: np.ndarray | None  # int64 ns since 1970 UTC, NO_TIME where unknown; None: no file has times
    texts: LazyTexts | None  # kept where asked (reports, the baseline, evaluate)
    tickers: list[str] | None  # space-separated upper-case tickers per message (evaluate --by ticker)
    skipped: int = 0  # rows without a bullish/bearish label
    duplicates: int = 0
    bad_rows: int = 0  # rows the reader could not use (empty message, broken line)
    dropped_empty: int = 0  # messages left without tokens by normalisation
    counts: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, max_examples: int | None = None, drop_empty: bool = True) -> Corpus:
        """The first `max_examples` messages (all if None), less those without tokens if `drop_empty`:
        what a run with these options trains on, taken from one reading of the files.

        >>> read_corpus("a.csv", TextOptions(), drop_empty=False).select(1000).dropped_empty  # doctest: +SKIP
        3
        """
        index = np.arange(len(self))[:max_examples]
        nonempty = self.tokens.lengths[index] > 0 if drop_empty else np.ones(len(index), dtype=bool)
        index = index[nonempty]
        return Corpus(
            files=self.files,
            words=self.words,
            tokens=self.tokens.subset(index),
            labels=self.labels[index],
            times=None if self.times is None else self.times[index],
            texts=None if self.texts is None else self.texts.subset(index),
            tickers=None if self.tickers is None else [self.tickers[i] for i in index.tolist()],
            skipped=self.skipped,
            duplicates=self.duplicates,
            bad_rows=self.bad_rows,
            dropped_empty=self.dropped_empty + int((~nonempty).sum()),
            counts=self.counts,
        )


def expand_data(data: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """Files named by paths, directories and globs, absolute, each once, in the order given."""
    from stocksent.readers import expand_inputs

    files = [p.resolve() for p in expand_inputs([data] if isinstance(data, (str, os.PathLike)) else list(data))]
    return list(dict.fromkeys(files))


def _tickers(column) -> list[str]:
    return [" ".join(row) for row in ticker_lists(column)]


def _hashes(values: list) -> np.ndarray:
    """A 64-bit hash per string, the same in every process (pandas' fixed-key SipHash)."""
    import pandas as pd

    return pd.util.hash_array(np.asarray(values, dtype=object), categorize=False)


def read_corpus(
    data: str | os.PathLike | Sequence[str | os.PathLike],
    options: TextOptions,
    max_examples: int | None = None,
    keep_text: bool = False,
    keep_tickers: bool = False,
    files: list[Path] | None = None,
    drop_empty: bool = True,
) -> Corpus:
    """Read, label, deduplicate and tokenise every message of `data` (see the module docstring).

    `max_examples` and `drop_empty` are `Corpus.select`'s: `drop_empty=False` keeps messages that
    normalisation leaves without tokens (to select from later); training drops them.

    >>> corpus = read_corpus(["2020.csv.gz", "api/"], TextOptions())  # doctest: +SKIP
    >>> len(corpus), corpus.tokens.nbytes  # doctest: +SKIP
    (1000000, 63000000)
    """
    paths = files if files is not None else expand_data(data)
    word_ids: dict[str, int] = {}
    ids_chunks: list[np.ndarray] = []
    length_chunks: list[np.ndarray] = []
    label_chunks: list[np.ndarray] = []
    time_chunks: list[np.ndarray] = []
    id_hashes: list[tuple[np.ndarray, np.ndarray]] = []  # (key, has a key) per batch
    text_hashes: list[np.ndarray] = []
    file_of: list[np.ndarray] = []
    texts: list = []
    tickers: list[str] = []
    records: list[dict] = []
    skipped = bad_rows = 0
    any_times = False
    for number, path in enumerate(paths):
        rows, labelled, bad, has_times, digest = _read_file(
            path,
            number,
            options,
            word_ids,
            (ids_chunks, length_chunks, label_chunks, time_chunks, id_hashes, text_hashes, file_of, texts, tickers),
            many=len(paths) > 1,
            keep_text=keep_text,
            keep_tickers=keep_tickers,
        )
        any_times |= has_times
        skipped += rows - labelled
        bad_rows += bad
        records.append({"path": str(path), "sha256": digest, "rows": rows + bad, "labelled": labelled})
    lengths = np.concatenate(length_chunks) if length_chunks else np.empty(0, np.int64)
    tokens = TokenArrays(
        np.concatenate(ids_chunks) if ids_chunks else np.empty(0, np.int32),
        np.concatenate([[0], np.cumsum(lengths)]),
    )
    del ids_chunks
    labels = np.concatenate(label_chunks) if label_chunks else np.empty(0, np.int8)
    times = np.concatenate(time_chunks) if any_times else None
    keep = _first_copies(
        np.concatenate([keys for keys, _ in id_hashes]) if id_hashes else np.empty(0, np.uint64),
        np.concatenate([has for _, has in id_hashes]) if id_hashes else np.empty(0, bool),
        np.concatenate(text_hashes) if text_hashes and len(paths) > 1 else None,
        np.concatenate(file_of) if file_of else np.empty(0, np.int32),
    )
    duplicates = int(len(keep) - keep.sum())
    index = np.flatnonzero(keep)
    if duplicates:
        log.info(f"dropped {duplicates} duplicate messages (same id, or same text in an earlier file)")
    return Corpus(
        files=records,
        words=list(word_ids),
        tokens=tokens.subset(index),
        labels=labels[index],
        times=None if times is None else times[index],
        texts=LazyTexts(texts).subset(index) if keep_text else None,
        tickers=[tickers[i] for i in index.tolist()] if keep_tickers else None,
        skipped=skipped,
        duplicates=duplicates,
        bad_rows=bad_rows,
    ).select(max_examples, drop_empty)


def _first_copies(
    id_hash: np.ndarray, has_id: np.ndarray, text_hash: np.ndarray | None, file_of: np.ndarray
) -> np.ndarray:
    """True for each row to keep: the first of each id; a row without an id unless its text came
    first from an earlier file."""
    keep = np.ones(len(id_hash), dtype=bool)
    if has_id.any():
        rows = np.flatnonzero(has_id)
        _, first = np.unique(id_hash[rows], return_index=True)
        keep[rows] = False
        keep[rows[first]] = True
    if text_hash is not None and len(text_hash):
        _, first, inverse = np.unique(text_hash, return_index=True, return_inverse=True)
        earlier_file = file_of[first][inverse] < file_of
        keep &= has_id | ~earlier_file
    return keep


@dataclass(frozen=True)
class _Columns:
    """Which column of a file holds what (`columns.find_column`); a file without labels is refused."""

    text: str
    label: str
    time: str | None
    id: str | None
    ticker: str | None

    @classmethod
    def of(cls, names: list[str], path: Path) -> _Columns:
        label = find_column(names, LABEL_COLUMNS)
        if label is None:
            raise StocksentError(
                f"{path} has no 'sentiment' column (columns: {', '.join(names)}), so no rows labelled bullish "
                "or bearish; training needs each message's tag in a 'sentiment' column (or StockTwits' "
                "entities.sentiment)"
            )
        found = (find_column(names, c) for c in (TIME_COLUMNS, ID_COLUMNS, TICKER_COLUMNS))
        return cls(resolve_text_column(names, None, str(path)), label, *found)


def _read_file(path: Path, number: int, options, word_ids, sinks, many: bool, keep_text: bool, keep_tickers: bool):
    """Stream one file into the sinks; (rows, labelled rows, bad rows, whether it has times, its sha256),
    the file read once: parsed and hashed on the same pass."""
    import pyarrow as pa

    from stocksent.readers import read_chunks

    bad: list = []
    digest: dict[str, str] = {}
    rows = labelled = 0
    columns = None
    for chunk in read_chunks([path], on_bad_row=bad.append, sha256=digest):
        batch = chunk.batch
        columns = columns or _Columns.of(batch.schema.names, path)
        rows += batch.num_rows
        labels = parse_labels(batch.column(columns.label), str(path), chunk.lines, chunk.unit)
        good = labels >= 0
        if good.any():
            if not good.all():
                batch, labels = batch.filter(pa.array(good)), labels[good]
            labelled += batch.num_rows
            _add(batch, labels, columns, number, options, word_ids, sinks, many, keep_text, keep_tickers)
    if rows == 0:
        unread = f" ({len(bad)} bad rows, the first: {bad[0]})" if bad else ""
        raise StocksentError(f"{path} contains no messages{unread}; give a file with one or more labelled messages")
    if labelled == 0:
        raise StocksentError(
            f"{path} has no rows labelled bullish or bearish ({rows} rows read); "
            "training needs a 'sentiment' column (or StockTwits entities.sentiment.basic)"
        )
    if bad:
        log.info(f"{path}: {len(bad)} rows left out, the first: {bad[0]}")
    return rows, labelled, len(bad), columns.time is not None, digest[str(path)]


def _add(batch, labels, columns: _Columns, number, options, word_ids, sinks, many, keep_text, keep_tickers) -> None:
    """One batch of labelled rows into the sinks: word ids, lengths, labels, times, ids, text hashes."""
    ids_chunks, length_chunks, label_chunks, time_chunks, id_hashes, text_hashes, file_of, texts, tickers = sinks
    n = batch.num_rows
    message = batch.column(columns.text)
    values = message.to_pylist()
    flat, lengths = normalise_flat(values, options)
    ids_chunks.append(_word_ids(flat, word_ids))
    length_chunks.append(np.asarray(lengths, dtype=np.int64))
    label_chunks.append(labels)
    times = parse_times(batch.column(columns.time)).ns if columns.time else np.full(n, NO_TIME, np.int64)
    time_chunks.append(times)
    no_id = (np.zeros(n, dtype=np.uint64), np.zeros(n, dtype=bool))
    id_hashes.append(id_keys(batch.column(columns.id)) if columns.id else no_id)
    if many:
        text_hashes.append(_hashes(values))
    file_of.append(np.full(n, number, dtype=np.int32))
    if keep_text:
        texts.append(message)
    if keep_tickers:
        tickers.extend(_tickers(batch.column(columns.ticker)) if columns.ticker else map(" ".join, cashtags(values)))


def _word_ids(flat: list[str], word_ids: dict[str, int]) -> np.ndarray:
    """int32 ids of `flat`'s tokens, new words numbered in order of first appearance: one hash-table
    pass in C (pandas.factorize) and a dict lookup per distinct word, not per token."""
    import pandas as pd

    if not flat:
        return np.empty(0, dtype=np.int32)
    codes, uniques = pd.factorize(np.asarray(flat, dtype=object))
    ids = np.fromiter((word_ids.setdefault(w, len(word_ids)) for w in uniques), dtype=np.int32, count=len(uniques))
    return ids[codes]
