"""Tests for stocksent.corpus and the splits built on it: many files of every format, duplicates,
flat token arrays, the time-ordered split, and the recorded splits rebuilt with sha256 checked.

The tutorial's single file must split exactly as it always did (the numbers of docs/results.md rest on it):
`test_the_tutorial_file_splits_exactly_as_before` checks sizes and membership against the old
list-of-lists implementation, written out here.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import DATA_PATH, labelled_of, records_of
from stocksent.batching import iterate_batches, pad
from stocksent.config import preset
from stocksent.corpus import NO_TIME, read_corpus
from stocksent.dataset import sha256_file
from stocksent.errors import StocksentError
from stocksent.inference.engine import flatten
from stocksent.splits import load_splits, recorded_splits, split_indices, split_positions
from stocksent.text import TextOptions, normalise
from stocksent.tokens import as_tokens
from stocksent.vocab import Vocabulary

EMOTIONS = DATA_PATH.parent / "StockEmotions_2020.csv.gz"
OPTIONS = preset("default").text_options


@pytest.fixture(scope="module")
def spy_records() -> list[dict]:
    return [r for r in records_of(DATA_PATH)[:3000] if r["sentiment"]]


@pytest.fixture(scope="module")
def emotion_rows() -> list[dict]:
    with gzip.open(EMOTIONS, "rt", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))[:2000]


def write_csv(path: Path, rows: list[dict], fields: list[str]) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def api_message(row: dict, number: int) -> dict:
    """A StockTwits API message object as the API returns it (the author's tag nested in entities)."""
    return {
        "id": int(row["id"]) if "id" in row else number,
        "body": row["message"],
        "created_at": row.get("date", "2020-06-01") + "T12:00:00Z",
        "user": {"id": 7, "username": "someone"},
        "symbols": [{"symbol": row.get("ticker", "SPY")}],
        "entities": {"sentiment": {"basic": row["sentiment"].capitalize()}},
    }


@pytest.mark.slow
def test_the_tutorial_file_splits_exactly_as_before() -> None:
    # The implementation every published number was made with: a list per message, then the seeded split.
    messages, labels = labelled_of(DATA_PATH)
    tokens = [normalise(m, OPTIONS) for m in messages]
    keep = [i for i, t in enumerate(tokens) if t]
    old = [[keep[j] for j in part] for part in split_indices(len(keep), seed=1)]

    loaded = load_splits(DATA_PATH, OPTIONS, seed=1)
    assert loaded.splits.sizes() == {"train": 77572, "val": 9696, "test": 9698}
    assert [len(p) for p in old] == [77572, 9696, 9698]
    for part, rows in zip((loaded.splits.train, loaded.splits.val, loaded.splits.test), old):
        assert list(part.messages) == [messages[i] for i in rows]
        assert part.labels.tolist() == [float(labels[i]) for i in rows]
        assert list(part.tokens[:500]) == [tokens[i] for i in rows[:500]]
    assert loaded.sha256 == sha256_file(DATA_PATH) and loaded.duplicates == 0
    assert loaded.record(1, None)["files"] == [
        {
            "path": str(DATA_PATH.resolve()),  # recorded absolute, symlinks resolved (../shared may be one)
            "sha256": loaded.sha256,
            "rows": len(labels),  # every row of the file is labelled
            "labelled": len(labels),
        }
    ]


def test_many_files_of_every_format_with_duplicates_kept_once(tmp_path, spy_records, emotion_rows) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = tmp_path / "data"
    (data / "api").mkdir(parents=True)
    # 1. CSV.gz with ids and dates (StockEmotions rows 0-999).
    write_csv(tmp_path / "a.csv.gz", emotion_rows[:1000], ["id", "date", "ticker", "sentiment", "message"])
    # 2. StockTwits API pages: rows 900-1199, so 100 ids repeat file 1 (kept once, from file 1).
    api = [api_message(r, 0) for r in emotion_rows[900:1200]]
    (data / "api" / "page1.json").write_text(json.dumps({"messages": api[:150]}), encoding="utf-8")
    (data / "api" / "page2.json").write_text(json.dumps({"messages": api[150:]}), encoding="utf-8")
    # 3. JSON Lines without ids: 500 SPY messages, 50 of them twice in the file (separate posts: kept).
    lines = spy_records[:500] + spy_records[:50]
    with gzip.open(tmp_path / "c.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in lines)
    # 4. Parquet without ids: 200 new SPY messages and 100 texts file 3 already had (dropped).
    rows = spy_records[500:700] + spy_records[100:200]
    table = pa.table({"message": [r["message"] for r in rows], "sentiment": [r["sentiment"] for r in rows]})
    pq.write_table(table, data / "d.parquet")

    inputs = [tmp_path / "a.csv.gz", str(data / "api" / "*.json"), tmp_path / "c.jsonl.gz", data / "d.parquet"]
    corpus = read_corpus(inputs, OPTIONS, keep_text=True, keep_tickers=True, drop_empty=False)
    texts = list(corpus.texts)
    expected = (
        [r["message"] for r in emotion_rows[:1200]]
        + [r["message"] for r in lines]
        + [r["message"] for r in spy_records[500:700]]
    )
    assert texts == expected
    assert corpus.duplicates == 100 + 100
    assert [Path(f["path"]).name for f in corpus.files] == [
        "a.csv.gz",
        "page1.json",
        "page2.json",
        "c.jsonl.gz",
        "d.parquet",
    ]
    assert [f["sha256"] for f in corpus.files] == [sha256_file(f["path"]) for f in corpus.files]
    labels = [r["sentiment"] == "bullish" for r in emotion_rows[:1200]] + [
        r["sentiment"] == "bullish" for r in lines + spy_records[500:700]
    ]
    assert corpus.labels.tolist() == [int(x) for x in labels]
    # Times where the file has them (StockEmotions' dates, the API's created_at), none elsewhere.
    assert (corpus.times[:1200] != NO_TIME).all() and (corpus.times[1200:] == NO_TIME).all()
    assert np.datetime64(int(corpus.times[0]), "ns").astype("datetime64[D]") == np.datetime64(emotion_rows[0]["date"])
    assert corpus.tickers[0] == emotion_rows[0]["ticker"] and corpus.tickers[1100] == emotion_rows[1100]["ticker"]
    assert corpus.tickers[1200] == "SPY"  # from the $SPY in the text: that file has no ticker column
    # Word ids end to end: decoding them gives each message's tokens.
    assert [[corpus.words[w] for w in corpus.tokens[i]] for i in (0, 1300, -1)] == [
        normalise(texts[i], OPTIONS) for i in (0, 1300, -1)
    ]
    assert corpus.tokens.ids.dtype == np.int32


def test_token_arrays_batch_and_flatten_as_lists_of_arrays(spy_records) -> None:
    sequences = [
        np.arange(len(normalise(r["message"], OPTIONS)), dtype=np.int64) + i for i, r in enumerate(spy_records)
    ]
    flat = as_tokens(sequences)
    manual = [np.zeros(max(len(s), 1), np.int64) for s in sequences[:3]]
    for row, s in zip(manual, sequences[:3]):
        row[: len(s)] = s
    first = pad(sequences, np.arange(3)).ids.numpy()
    assert all(np.array_equal(first[i, : len(manual[i])], manual[i]) for i in range(3))
    picked = flat.subset(np.arange(len(sequences))[::-3])
    lists = sequences[::-3]
    index = np.array([5, 0, 17, 3])
    a, b = picked.batch(index), pad(lists, index)
    assert a.ids.equal(b.ids) and a.lengths.equal(b.lengths) and (a.index == b.index).all()
    for got, want in zip(flatten(picked), flatten(lists)):
        assert np.array_equal(got, want)
    rng = [np.random.default_rng(4), np.random.default_rng(4)]
    for x, y in zip(iterate_batches(picked, 64, rng[0]), iterate_batches(lists, 64, rng[1])):
        assert x.ids.equal(y.ids) and (x.index == y.index).all()


def test_vocabulary_from_ids_is_build_on_the_decoded_tokens(spy_records) -> None:
    corpus_path_tokens = [normalise(r["message"], OPTIONS) for r in spy_records]
    words = list(dict.fromkeys(w for t in corpus_path_tokens for w in t))
    index = {w: i for i, w in enumerate(words)}
    order = np.random.default_rng(0).permutation(len(corpus_path_tokens))
    ids = np.array([index[w] for i in order for w in corpus_path_tokens[i]], dtype=np.int32)
    for min_count in (1, 2, 5):
        built = Vocabulary.build([corpus_path_tokens[i] for i in order], min_count)
        assert Vocabulary.from_ids(words, ids, min_count).words == built.words


def test_time_split_is_oldest_train_newest_test(tmp_path, emotion_rows) -> None:
    rows = list(reversed(emotion_rows))  # the file's order is not the time order
    path = write_csv(tmp_path / "e.csv", rows, ["id", "date", "ticker", "sentiment", "message"])
    loaded = load_splits(path, OPTIONS, seed=1, split="time")
    splits = loaded.splits
    assert splits.sizes() == {"train": int(0.8 * len(rows)), "val": int(0.1 * len(rows)), "test": len(rows) - 1800}
    assert splits.train.times.max() <= splits.val.times.min() <= splits.val.times.max() <= splits.test.times.min()
    dates = sorted(r["date"] for r in rows)
    assert str(np.datetime64(int(splits.test.times.max()), "ns").astype("datetime64[D]")) == dates[-1]
    assert loaded.record(1, None)["split_by"] == "time"
    # No times: a clear error, as for a message without one.
    no_times = write_csv(tmp_path / "n.csv", rows, ["sentiment", "message"])
    with pytest.raises(StocksentError, match="--split time needs a time per message.*--split random"):
        load_splits(no_times, OPTIONS, seed=1, split="time")
    rows[5] = {**rows[5], "date": "not a date"}
    with pytest.raises(StocksentError, match="1 of 2000 messages have none or an unreadable one"):
        load_splits(write_csv(tmp_path / "b.csv", rows, ["date", "sentiment", "message"]), OPTIONS, 1, split="time")
    with pytest.raises(StocksentError, match="--split must be one of random, time"):
        split_positions(10, "shuffle", 1, None)


def test_recorded_splits_rebuild_the_same_splits_with_sha256_checked(tmp_path, spy_records, emotion_rows) -> None:
    first = write_csv(tmp_path / "a.csv", emotion_rows[:1000], ["id", "date", "ticker", "sentiment", "message"])
    second = tmp_path / "b.jsonl"
    second.write_text("".join(json.dumps(r) + "\n" for r in spy_records[:800]), encoding="utf-8")
    loaded = load_splits([first, second], OPTIONS, seed=3)
    record = json.loads(json.dumps(loaded.record(3, None)))  # as config.json holds it
    again = recorded_splits(record, OPTIONS)
    for name in ("train", "val", "test"):
        assert list(getattr(again, name).messages) == list(getattr(loaded.splits, name).messages)
    # Moved: found by content wherever --data points, whatever the names.
    moved = tmp_path / "moved"
    moved.mkdir()
    first.rename(moved / "x.csv")
    second.rename(moved / "y.jsonl")
    with pytest.raises(StocksentError, match="training data not found"):
        recorded_splits(record, OPTIONS)
    assert list(recorded_splits(record, OPTIONS, moved).test.messages) == list(loaded.splits.test.messages)
    # Changed: refused.
    (moved / "y.jsonl").write_text(json.dumps(spy_records[0]) + "\n", encoding="utf-8")
    with pytest.raises(StocksentError, match="not among the files given"):
        recorded_splits(record, OPTIONS, moved)


def test_errors_name_the_file(tmp_path) -> None:
    unlabelled = tmp_path / "u.csv"
    unlabelled.write_text("message\n$SPY up\n", encoding="utf-8")
    with pytest.raises(StocksentError, match="u.csv has no 'sentiment' column"):
        read_corpus(unlabelled, TextOptions())
    with pytest.raises(StocksentError, match="no such file"):
        read_corpus(tmp_path / "missing.csv", TextOptions())


# --------------------------------------------------------------------------- split


def test_split_sizes_disjoint_and_covering() -> None:
    train, val, test = split_indices(1000, seed=0)
    assert (len(train), len(val), len(test)) == (800, 100, 100)
    assert set(train).isdisjoint(val) and set(train).isdisjoint(test) and set(val).isdisjoint(test)
    assert sorted(train + val + test) == list(range(1000))
    assert train != sorted(train)  # actually shuffled
    assert all(type(i) is int for i in train[:5])


def test_split_rounding_and_real_size() -> None:
    train, val, test = split_indices(96_967, seed=1)
    assert (len(train), len(val)) == (int(96_967 * 0.8), int(96_967 * 0.1))
    assert len(train) + len(val) + len(test) == 96_967
    assert [len(x) for x in split_indices(7, seed=0)] == [5, 0, 2]


def test_split_deterministic_per_seed() -> None:
    assert split_indices(500, seed=42) == split_indices(500, seed=42)
    assert split_indices(500, seed=42) != split_indices(500, seed=43)


def test_split_custom_fractions_and_invalid() -> None:
    train, val, test = split_indices(100, seed=0, fractions=(0.5, 0.25, 0.25))
    assert (len(train), len(val), len(test)) == (50, 25, 25)
    with pytest.raises(StocksentError, match="fractions"):
        split_indices(100, seed=0, fractions=(0.8, 0.3, 0.1))
