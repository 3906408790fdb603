"""stocksent.writers: one output-format chooser, one writer, and one check that no command writes over its input."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import DATA_PATH
from stocksent.cli import main
from stocksent.errors import StocksentError
from stocksent.writers import TableWriter, jsonl_text, output_format, refuse_inputs, write_table

BATCH = pa.RecordBatch.from_pydict(
    {
        "message": ["=HYPERLINK(1)", "+1 calls", "-2% puts", "@bob hi", "plain", None],
        "symbols": [["AAPL"], [], None, ["=X"], ["F"], []],
        "p_bullish": pa.array([0.8231411, 0.1, 0.5, None, 0.25, 0.75], pa.float32()),
    }
)


def test_format_from_the_extension_or_format_and_unknown_names_refused():
    assert output_format("a.parquet") == ("parquet", False) and output_format("a.PQ") == ("parquet", False)
    assert output_format("a.csv") == ("csv", False) and output_format("a.csv.gz") == ("csv", True)
    assert output_format("a.jsonl.gz") == ("jsonl", True) and output_format("a.ndjson") == ("jsonl", False)
    assert output_format("a.txt", "csv") == ("csv", False)
    for name in ("a.txt", "a", "a.json", "a.gz"):
        with pytest.raises(StocksentError, match=r"cannot tell the output format.*--format"):
            output_format(name)
    with pytest.raises(StocksentError, match="drop the .gz"):
        output_format("a.parquet.gz")
    with pytest.raises(StocksentError, match="unknown output format"):
        output_format("a.csv", "xlsx")


@pytest.mark.parametrize("name", ["out.parquet", "out.csv", "out.csv.gz", "out.jsonl", "out.jsonl.gz"])
def test_every_format_round_trips_the_rows(tmp_path, name):
    path = tmp_path / name
    write_table(pa.Table.from_batches([BATCH]), path)
    if name.endswith(".parquet"):
        back = pq.read_table(path).to_pylist()
        assert back[0]["message"] == "=HYPERLINK(1)"  # Parquet is data, not a spreadsheet: kept as it is
        return
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if name.endswith(".gz") else raw).decode("utf-8")
    if ".jsonl" in name:
        rows = [json.loads(line) for line in text.splitlines()]
        assert list(rows[0]) == ["message", "symbols", "p_bullish"]  # the columns' order
        assert rows[0]["p_bullish"] == 0.8231411 and rows[3]["p_bullish"] is None  # float32's shortest decimal
    else:
        lines = text.splitlines()
        assert lines[0] == '"message","symbols","p_bullish"'
        # No cell can start a formula: =, +, -, @ get a leading quote (OWASP's CSV injection rule).
        cells = [line.split(",", 1)[0].strip('"') for line in lines[1:]]
        assert cells[:5] == ["'=HYPERLINK(1)", "'+1 calls", "'-2% puts", "'@bob hi", "plain"]
        assert '"[""=X""]"' in lines[4]  # lists as JSON text


def test_same_batches_give_the_same_bytes_and_a_failed_write_leaves_the_old_file(tmp_path):
    a, b = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"
    write_table(pa.Table.from_batches([BATCH]), a)
    write_table(pa.Table.from_batches([BATCH]), b)
    assert a.read_bytes() == b.read_bytes()
    target = tmp_path / "keep.jsonl"
    target.write_text("precious\n")
    with pytest.raises(RuntimeError):
        with TableWriter(target) as writer:
            writer.write(BATCH)
            raise RuntimeError("stop half way")
    assert target.read_text() == "precious\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "a.csv.gz",
        "b.csv.gz",
        "keep.jsonl",
    ]


def test_an_empty_output_still_has_its_columns(tmp_path):
    schema = pa.schema([("message", pa.string()), ("p_bullish", pa.float64())])
    with TableWriter(tmp_path / "e.csv", schema=schema):
        pass
    assert (tmp_path / "e.csv").read_text() == '"message","p_bullish"\n'
    with TableWriter(tmp_path / "e.parquet", schema=schema):
        pass
    assert pq.read_table(tmp_path / "e.parquet").schema.names == ["message", "p_bullish"]
    assert jsonl_text(schema.empty_table()) == ""


def test_an_output_that_is_an_input_is_refused_however_spelt(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "in.csv"
    source.write_text("message\nhi\n")
    os.symlink(source, tmp_path / "link.csv")
    os.link(source, tmp_path / "hard.csv")
    (tmp_path / "runs").mkdir()
    for spelling in ("in.csv", "./in.csv", str(source), "link.csv", "hard.csv", "runs/../in.csv"):
        with pytest.raises(StocksentError, match="is also an input"):
            refuse_inputs([spelling], [source])
    with pytest.raises(StocksentError, match="holds the input"):
        refuse_inputs([tmp_path], [source], directories=True)
    refuse_inputs([tmp_path], [source])  # a file output: a directory is not the input
    refuse_inputs(["out.csv", tmp_path / "runs"], [source], directories=True)  # elsewhere: fine


# --------------------------------------------------------------------------- every command that writes


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(capsys, args, protected: Path, before: bytes) -> None:
    code, out, err = run_cli(capsys, *args)
    assert code == 2, err
    assert "is also an input" in err or "holds the input" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert protected.read_bytes() == before


@pytest.fixture
def messages(tmp_path) -> Path:
    path = tmp_path / "emo.csv"
    path.write_text(
        "id,created_at,symbols,message,sentiment\n"
        "1,2020-07-06T15:00:00Z,AAPL,$AAPL to the moon,bullish\n"
        "2,2020-07-06T16:00:00Z,AAPL,$AAPL puts,bearish\n",
        encoding="utf-8",
    )
    return path


def test_predict_score_and_index_never_write_over_an_input(small_model_dir, tmp_path, capsys, messages, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = messages.read_bytes()
    os.symlink(messages, tmp_path / "alias.csv")
    for output in ("emo.csv", "./emo.csv", str(messages), "alias.csv"):
        assert_refused(capsys, ["predict", "--model", small_model_dir, "--input", messages, "--output", output],
                       messages, before)  # fmt: skip
        assert_refused(capsys, ["score", "e*.csv", "--model", small_model_dir, "--output", output], messages, before)
        assert_refused(capsys, ["index", messages, "--model", small_model_dir, "--output", output, "--calendar",
                                "24x7"], messages, before)  # fmt: skip


def test_the_index_never_writes_over_a_scored_parquet_input(small_model_dir, tmp_path, capsys, messages):
    scored = tmp_path / "scored.parquet"
    code, _, err = run_cli(capsys, "score", messages, "--model", small_model_dir, "-o", scored, "--workers", "1")
    assert code == 0, err
    assert_refused(capsys, ["index", scored, "--output", scored, "--calendar", "24x7"], scored, scored.read_bytes())


def test_model_and_data_writers_never_write_over_an_input(small_model_dir, tmp_path, capsys, messages):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(small_model_dir, model)
    weights = model / "model.safetensors"
    assert_refused(capsys, ["export", "--model", model, "--onnx", weights], weights, weights.read_bytes())
    config = model / "config.json"
    assert_refused(capsys, ["report", "--model", model, "--out", config], config, config.read_bytes())
    before = messages.read_bytes()
    assert_refused(capsys, ["train", "--data", messages, "--out", tmp_path], messages, before)
    assert_refused(capsys, ["baseline", "--data", messages, "--out", tmp_path], messages, before)
    pytest.importorskip("optuna")
    assert_refused(capsys, ["tune", "--data", messages, "--trials", "1", "--out", messages], messages, before)


def test_predict_writes_the_format_its_name_says(small_model_dir, tmp_path, capsys):
    out = tmp_path / "p.parquet"
    code, _, err = run_cli(capsys, "predict", "--model", small_model_dir, "--output", out, "$SPY up", "!!!")
    assert code == 0, err
    rows = pq.read_table(out).to_pylist()
    assert [r["message"] for r in rows] == ["$SPY up", "!!!"]
    assert rows[1]["label"] is None and rows[1]["p_bullish"] is None  # no words: no label
    code, out_, err = run_cli(capsys, "predict", "--model", small_model_dir, "--output", tmp_path / "p.txt", "x")
    assert code == 2 and "cannot tell the output format" in err and not (tmp_path / "p.txt").exists()
    code, _, err = run_cli(
        capsys, "predict", "--model", small_model_dir, "--output", tmp_path / "p.txt", "--format", "jsonl", "x"
    )
    assert code == 0 and json.loads((tmp_path / "p.txt").read_text())["message"] == "x"
    assert DATA_PATH.is_file()
