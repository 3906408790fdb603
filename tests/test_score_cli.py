"""`stocksent score`: every format in and out, order and columns kept, workers and resume change no byte."""

from __future__ import annotations

import csv
import gzip
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import texts_of
from stocksent.batch.files import score_files
from stocksent.cli import main


@pytest.fixture(scope="module")
def messages() -> list[str]:
    from conftest import DATA_PATH

    return [m for m in texts_of(DATA_PATH)[:2600] if m.strip()][:2500]


@pytest.fixture(scope="module")
def reference(small_model_dir, messages) -> np.ndarray:
    from stocksent import SentimentModel

    return SentimentModel.load(small_model_dir, precision="float32").predict_proba(messages)


@pytest.fixture(scope="module")
def csv_input(tmp_path_factory, messages):
    path = tmp_path_factory.mktemp("in") / "real.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "created_at", "message"])
        writer.writerows([[i, f"2017-06-01T{i % 24:02d}:00:00Z", m] for i, m in enumerate(messages)])
    return path


def score(*args: str) -> int:
    return main(["score", "--no-progress", *map(str, args)])


def test_csv_to_parquet_keeps_columns_and_order_and_matches_predict_proba(
    small_model_dir, csv_input, reference, tmp_path, capsys
):
    out = tmp_path / "out.parquet"
    assert score(csv_input, "--model", small_model_dir, "-o", out, "--workers", "2", "--chunk-rows", "300") == 0
    table = pq.read_table(out)
    assert table.schema.names == ["id", "created_at", "message", "p_bullish", "label"]
    assert table.schema.field("p_bullish").type == pa.float32()
    assert table.column("id").to_pylist() == [str(i) for i in range(len(reference))]
    np.testing.assert_allclose(table.column("p_bullish").to_numpy(), reference, atol=1e-6, rtol=0)
    summary = capsys.readouterr().err
    assert f"scored {len(reference):,} messages from 1 file" in summary and "2 workers" in summary
    assert not list(tmp_path.glob(".*"))  # no work folder or temporary file left


def test_workers_do_not_change_a_byte(small_model_dir, csv_input, tmp_path):
    outputs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}.parquet"
        assert score(csv_input, "--model", small_model_dir, "-o", out, "--workers", workers, "--chunk-rows", "400") == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_threads_and_processes_write_the_same_bytes(small_model_dir, csv_input, tmp_path):
    """The compiled core scores in threads; worker processes (the reference path's way) give the same file."""
    from stocksent.encoding import compiled_text

    if not compiled_text():
        pytest.skip("the compiled core is not built here: score runs in processes only")
    outputs = {}
    for in_threads, workers in ((True, 1), (True, 2), (True, 3), (False, 2)):
        out = tmp_path / f"{in_threads}-{workers}.parquet"
        summary = score_files([csv_input], small_model_dir, out, workers=workers, chunk_rows=400, in_threads=in_threads)
        assert summary.rows == 2500 and summary.chunks == 7
        outputs[in_threads, workers] = out.read_bytes()
    assert len(set(outputs.values())) == 1, list(outputs)


@pytest.mark.parametrize("in_threads", [True, False], ids=["threads", "processes"])
def test_resume_after_an_interruption_gives_the_same_bytes(small_model_dir, csv_input, tmp_path, in_threads):
    whole = tmp_path / "whole.parquet"
    assert score(csv_input, "--model", small_model_dir, "-o", whole, "--chunk-rows", "300", "--workers", "2") == 0
    out = tmp_path / "resumed.parquet"

    def interrupt(rows, done, total):
        if rows >= 900:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_files(
            [csv_input], small_model_dir, out, chunk_rows=300, workers=2, progress=interrupt, in_threads=in_threads
        )
    assert not out.exists()
    kept = sorted(p.name for p in (tmp_path / ".resumed.parquet.score").glob("chunk-*.arrow"))
    assert kept == [f"chunk-{i:08d}.arrow" for i in range(3)]  # the chunks written, in order
    summary = score_files([csv_input], small_model_dir, out, chunk_rows=300, workers=1, resume=True)
    assert summary.resumed_chunks == 3 and summary.rows == 2500
    assert out.read_bytes() == whole.read_bytes()
    assert not (tmp_path / ".resumed.parquet.score").exists()


def test_resume_refuses_other_options(small_model_dir, csv_input, tmp_path, capsys):
    out = tmp_path / "o.parquet"

    def interrupt(rows, done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_files([csv_input], small_model_dir, out, chunk_rows=300, workers=1, progress=interrupt)
    assert score(csv_input, "--model", small_model_dir, "-o", out, "--chunk-rows", "500", "--resume") == 2
    assert "other inputs, model or options" in capsys.readouterr().err
    assert score(csv_input, "--model", small_model_dir, "-o", out, "--chunk-rows", "500") == 0  # afresh


@pytest.mark.parametrize("name", ["out.csv", "out.jsonl", "out.csv.gz"])
def test_text_outputs_hold_the_same_rows(small_model_dir, csv_input, reference, tmp_path, name):
    out = tmp_path / name
    assert score(csv_input, "--model", small_model_dir, "-o", out, "--columns", "id", "--workers", "1") == 0
    opener = gzip.open if name.endswith(".gz") else open
    with opener(out, "rt", encoding="utf-8", newline="") as handle:
        if ".csv" in name:
            rows = list(csv.DictReader(handle))
        else:
            rows = [json.loads(line) for line in handle]
    assert list(rows[0]) == ["id", "p_bullish", "label"]
    assert [str(r["id"]) for r in rows] == [str(i) for i in range(len(reference))]
    np.testing.assert_allclose([float(r["p_bullish"]) for r in rows], reference, atol=1e-6, rtol=0)


def test_every_input_format(small_model_dir, messages, reference, tmp_path):
    n = 60
    api = [{"id": i, "body": m, "created_at": "2017-06-01T10:00:00Z", "user": {"id": 5}, "symbols": [{"symbol": "SPY"}],
            "entities": {"sentiment": {"basic": "Bullish"} if i % 2 else None}} for i, m in enumerate(messages[:n])]  # fmt: skip
    (tmp_path / "page.json").write_text(json.dumps({"messages": api[:20]}, indent=1), encoding="utf-8")
    (tmp_path / "api.jsonl.gz").write_bytes(gzip.compress("".join(json.dumps(a) + "\n" for a in api[20:]).encode()))
    out = tmp_path / "api.parquet"
    assert score(tmp_path / "page.json", tmp_path / "api.jsonl.gz", "--model", small_model_dir, "-o", out) == 0
    table = pq.read_table(out)
    assert table.schema.names == ["id", "created_at", "user_id", "symbols", "sentiment", "body", "p_bullish", "label"]
    assert table.column("id").to_pylist() == list(range(n)) and table.column("symbols")[0].as_py() == ["SPY"]
    assert table.column("sentiment").to_pylist()[:2] == [None, "Bullish"]
    np.testing.assert_allclose(table.column("p_bullish").to_numpy(), reference[:n], atol=1e-6, rtol=0)
    # plain JSON rows and Parquet, given as a directory
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.jsonl").write_text(
        "".join(json.dumps({"message": m, "k": i}) + "\n" for i, m in enumerate(messages[:30]))
    )
    pq.write_table(pa.table({"message": messages[30:n], "k": list(range(30, n))}), folder / "b.parquet")
    out = tmp_path / "mixed.jsonl"
    assert score(folder, "--model", small_model_dir, "-o", out) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["k"] for r in rows] == list(range(n)) and [r["message"] for r in rows] == messages[:n]
    np.testing.assert_allclose([r["p_bullish"] for r in rows], reference[:n], atol=1e-6, rtol=0)


def test_bad_rows_are_counted_and_strict_names_the_line(small_model_dir, tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_bytes(b'id,message\n1,"$SPY up\nand away"\n2,\n3,\xff\xfe\n4,"$SPY down"\n')
    out = tmp_path / "bad.parquet"
    assert score(path, "--model", small_model_dir, "-o", out) == 0
    err = capsys.readouterr().err
    assert "1 bad rows skipped" in err and "bad.csv line 5: column 'message' is not UTF-8" in err
    # The empty message (line 4) is a row: no words to score, so a null p_bullish and label, in its place.
    assert "1 with no words to score" in err
    table = pq.read_table(out)
    assert table.column("id").to_pylist() == ["1", "2", "4"] and table.column("label").to_pylist()[1] is None
    assert score(path, "--model", small_model_dir, "-o", tmp_path / "strict.parquet", "--strict") == 2
    err = capsys.readouterr().err
    assert err.startswith("stocksent: error: ") and "bad.csv line 5: column 'message' is not UTF-8" in err
    assert "--strict" in err
    assert not (tmp_path / "strict.parquet").exists() and not list(tmp_path.glob(".strict*"))


def test_an_empty_message_of_a_one_column_csv_keeps_its_row_even_with_strict(small_model_dir, tmp_path, capsys):
    """Issue 20 item 22: `""` is a message without words (null p, no label), never a dropped row."""
    path = tmp_path / "one.csv"
    path.write_text('message\n$SPY up\n""\n!!!\n$SPY down\n', encoding="utf-8")
    out = tmp_path / "one.jsonl"
    assert score(path, "--model", small_model_dir, "-o", out, "--strict") == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["message"] for r in rows] == ["$SPY up", "", "!!!", "$SPY down"]
    assert [r["label"] is None for r in rows] == [False, True, True, False]
    assert "2 with no words to score" in capsys.readouterr().err


def test_user_errors_are_one_line(small_model_dir, csv_input, tmp_path, capsys):
    cases = [
        ([csv_input, "-o", tmp_path / "x.txt"], "cannot tell the output format"),
        ([csv_input, "-o", tmp_path / "x.parquet", "--text-column", "nope"], "no column 'nope'"),
        ([csv_input, "-o", tmp_path / "x.parquet", "--columns", "nope"], "check --columns"),
        ([tmp_path / "missing.csv", "-o", tmp_path / "x.parquet"], "no such file"),
        ([csv_input, "-o", csv_input.with_suffix(".csv")], "also an input"),
        ([csv_input, "-o", tmp_path / "x.parquet.gz"], "Parquet compresses"),
    ]
    for args, message in cases:
        assert score(*args, "--model", small_model_dir) == 2, message
        err = capsys.readouterr().err
        assert err.startswith("stocksent: error: ") and message in err and err.count("\n") == 1, err
