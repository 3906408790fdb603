"""Tests for stocksent.cli: train/evaluate/predict end to end, every predict input and output, bad input.

Most tests call `main([...])` in-process; a few run `python -m stocksent` and the `stocksent` entry point.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA_PATH, records_of
from stocksent import SentimentModel
from stocksent.cli import main

MESSAGES = [
    "$SPY breaking out to new highs, loading calls 🚀",
    "$SPY this is going to crash hard, buying puts",
    "Fed meeting today, staying flat",
    'he said "sell", then bought',
    "naïve café ☕",
]
EVALUATE_KEYS = {
    "n",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "confusion",
    "majority_accuracy",
    "threshold",
    "split",
    "skipped_unlabelled",
}
# The console script installed beside this interpreter (the venv's bin/), else the one on PATH.
ENTRY_POINT = next(
    (p for p in (Path(sys.executable).parent / "stocksent", shutil.which("stocksent")) if p and Path(p).is_file()),
    "stocksent",
)


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def subprocess_run(command: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(command, input=stdin, capture_output=True, env=env, check=False, timeout=300)


def expected_rows(model_dir: Path, messages: list[str]) -> list[dict]:
    """What predict writes per message; a message without words has a null label and p_bullish."""
    predictions = SentimentModel.load(model_dir).predict(messages)
    return [
        {"message": m, "label": p.label, "p_bullish": None if p.p_bullish is None else round(p.p_bullish, 6)}
        for m, p in zip(messages, predictions)
    ]


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def assert_one_line_error(code: int, out: str, err: str, *words: str) -> None:
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1 and err.endswith("\n"), err
    assert err.startswith("stocksent: error: ")
    assert "Traceback" not in err
    for word in words:
        assert word in err, err


def no_temp_files(directory: Path) -> bool:
    return not [p.name for p in directory.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".")]


@pytest.fixture(scope="module")
def real_rows() -> list[dict]:
    return records_of(DATA_PATH)[20_000:20_030]


# --------------------------------------------------------------------------- end to end


def test_train_evaluate_predict_end_to_end(tmp_path, capsys) -> None:
    out = tmp_path / "model"
    code, stdout, stderr = run_cli(
        capsys,
        "train",
        "--data",
        DATA_PATH,
        "--out",
        out,
        "--max-examples",
        "2000",
        "--epochs",
        "2",
        "--embed-size",
        "32",
        "--lstm-sizes",
        "16,8",
        "--seed",
        "5",
        "--ngram-buckets",
        "4096",
        "--ngram-lr",
        "0.01",
        "--no-linear-blend",
        "--threads",
        "1",
        "--device",
        "cpu",
    )
    assert code == 0, stderr
    # Results on stdout, progress on stderr.
    assert stdout.splitlines()[0] == f"model: {out}"
    assert "test n=200" in stdout and "accuracy" in stdout and "confusion" in stdout
    assert "Epoch:" not in stdout
    assert [line[:10] for line in stderr.splitlines() if line.startswith("Epoch:")] == ["Epoch: 1/2", "Epoch: 2/2"]
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["epochs"] == 2 and config["train"]["lstm_sizes"] == [16, 8]
    assert config["train"]["seed"] == 5 and config["train"]["max_examples"] == 2000
    assert config["train"]["ngram_lr"] == 0.01 and config["model"]["ngram_buckets"] == 4096
    assert config["train"]["linear_blend"] is False and metrics["blend"] is None

    code, stdout, stderr = run_cli(capsys, "evaluate", "--model", out, "--json")
    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["split"] == "test"
    assert {k: result[k] for k in metrics["test"]} == metrics["test"]

    code, stdout, _ = run_cli(capsys, "evaluate", "--model", out)
    assert code == 0
    assert stdout.startswith("split: test\nn=200  accuracy ")

    code, stdout, stderr = run_cli(capsys, "predict", "--model", out, "--json", *MESSAGES)
    assert code == 0, stderr
    assert json_lines(stdout) == expected_rows(out, MESSAGES)


def test_python_m_with_a_real_stdin_pipe(small_model_dir) -> None:
    stdin = "\n".join(MESSAGES).encode("utf-8") + b"\r\n\n   \n"
    piped = subprocess_run(
        [sys.executable, "-m", "stocksent", "predict", "--model", str(small_model_dir), "--json"], stdin=stdin
    )
    assert piped.returncode == 0, piped.stderr.decode()
    # Every line in its place: the blank ones are messages without words (no label), never dropped.
    assert json_lines(piped.stdout.decode("utf-8")) == expected_rows(small_model_dir, [*MESSAGES, "", "   "])
    assert (
        piped.stderr.decode() == "2 message(s) have no label: no words to score: the message is empty once normalised\n"
    )


def test_entry_point_error_is_one_line(small_model_dir) -> None:
    bad = subprocess_run([str(ENTRY_POINT), "predict", "--model", str(small_model_dir.parent / "nope"), "x"])
    assert bad.returncode == 2
    assert bad.stdout == b""
    assert bad.stderr.decode().startswith("stocksent: error: model directory not found")
    assert bad.stderr.decode().count("\n") == 1 and b"Traceback" not in bad.stderr


# --------------------------------------------------------------------------- evaluate


def test_evaluate_json_keys(small_model_dir, capsys) -> None:
    code, out, err = run_cli(capsys, "evaluate", "--model", small_model_dir, "--json", "--split", "test")
    assert code == 0, err
    assert len(out.splitlines()) == 1
    result = json.loads(out)
    assert set(result) == EVALUATE_KEYS
    assert result["split"] == "test"
    recorded = json.loads((small_model_dir / "metrics.json").read_text())["test"]
    assert {k: result[k] for k in recorded} == recorded


# --------------------------------------------------------------------------- predict inputs


def test_predict_from_arguments_plain_output(small_model_dir, capsys) -> None:
    code, out, err = run_cli(capsys, "predict", "--model", small_model_dir, *MESSAGES[:3])
    assert code == 0 and err == ""
    rows = expected_rows(small_model_dir, MESSAGES[:3])
    assert out.splitlines() == [f"{r['label']:<8} {r['p_bullish']:.3f}  {r['message']}" for r in rows]


CONTROLS = [
    "\x1b[2J\x1b[31mred $SPY\x1b[0m",
    "\x1b]0;a new title\x07",
    "\x9b31m a C1 CSI",
    "over\u202eride",
    "carriage\rreturn",
    "tab\tnew\nline",
    "del\x7f",
]
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")  # all but \n


def test_predict_never_prints_a_raw_control_character(small_model_dir, capsys, tmp_path) -> None:
    code, stdout, _ = run_cli(capsys, "predict", "--model", small_model_dir, *CONTROLS)
    assert code == 0 and len(stdout.splitlines()) == len(CONTROLS)  # one line per message, whatever it holds
    assert not RAW_CONTROL.search(stdout), repr(stdout)
    assert "\\x1b[2J" in stdout and "\\u202e" in stdout and "\\x0a" in stdout  # shown as escapes
    code, stdout, _ = run_cli(capsys, "predict", "--model", small_model_dir, "--json", *CONTROLS)
    assert code == 0 and not RAW_CONTROL.search(stdout), repr(stdout)
    assert [json.loads(line)["message"] for line in stdout.splitlines()] == CONTROLS  # the same text
    listed = tmp_path / "controls.jsonl"
    listed.write_text("".join(json.dumps({"message": m}) + "\n" for m in CONTROLS), encoding="utf-8")
    code, stdout, _ = run_cli(capsys, "predict", "--model", small_model_dir, "--input", listed)
    assert code == 0 and not RAW_CONTROL.search(stdout), repr(stdout)
    code, _, stderr = run_cli(capsys, "predict", "--model", tmp_path / "no\x1b[2Jsuch", "x")
    assert code == 2 and "\x1b" not in stderr and "no\\x1b[2Jsuch" in stderr


def test_predict_json_lines_in_input_order(small_model_dir, capsys, real_rows) -> None:
    messages = [r["message"].replace("\n", " ") for r in real_rows]
    code, out, _ = run_cli(capsys, "predict", "--model", small_model_dir, "--json", *messages)
    assert code == 0
    rows = json_lines(out)
    assert [r["message"] for r in rows] == messages
    assert all(set(r) == {"message", "label", "p_bullish"} for r in rows)
    assert rows == expected_rows(small_model_dir, messages)


def write_input(path: Path, kind: str, messages: list[str]) -> Path:
    if kind in ("csv", "csv.gz"):
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer)
        writer.writerow(["id", "message", "sentiment"])
        writer.writerows([i, m, "bullish"] for i, m in enumerate(messages))
        data = buffer.getvalue().encode("utf-8")
        path.write_bytes(gzip.compress(data) if kind == "csv.gz" else data)
    elif kind == "jsonl-message":
        path.write_text("".join(json.dumps({"message": m, "user": "x"}) + "\n" for m in messages), encoding="utf-8")
    elif kind == "jsonl-body":
        path.write_text(
            "".join(json.dumps({"id": i, "body": m}) + "\n" for i, m in enumerate(messages)), encoding="utf-8"
        )
    else:
        path.write_text("\n".join(messages) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "kind, name",
    [
        ("csv", "in.csv"),
        ("csv.gz", "in.csv.gz"),
        ("jsonl-message", "in.jsonl"),
        ("jsonl-body", "in.jsonl"),
        ("text", "in.txt"),
        ("text", "messages"),
    ],
)
def test_predict_from_input_file(small_model_dir, capsys, tmp_path, kind, name, real_rows) -> None:
    # CSV keeps embedded newlines; line-based formats need one message per line.
    messages = [r["message"] for r in real_rows] + MESSAGES
    if kind == "text":
        messages = [m.replace("\n", " ") for m in messages]
    path = write_input(tmp_path / name, kind, messages)
    code, out, err = run_cli(capsys, "predict", "--model", small_model_dir, "--input", path, "--json")
    assert code == 0, err
    assert json_lines(out) == expected_rows(small_model_dir, messages)


def test_predict_from_stdin(small_model_dir, capsys, monkeypatch) -> None:
    data = ("\n".join(MESSAGES) + "\n\n").encode("utf-8")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    code, out, err = run_cli(capsys, "predict", "--model", small_model_dir, "--json")
    assert code == 0, err
    assert json_lines(out) == expected_rows(small_model_dir, [*MESSAGES, ""])


def test_predict_keeps_blank_lines_so_output_lines_up_with_input(small_model_dir, capsys, tmp_path) -> None:
    """Issue 20 item 22: 5 lines in, 5 out; a blank line is a message with no words, so no label."""
    path = tmp_path / "five.txt"
    path.write_text("$SPY up\n\n$SPY down\n   \nflat\n", encoding="utf-8")
    out = tmp_path / "five.csv"
    code, _, err = run_cli(capsys, "predict", "--model", small_model_dir, "--input", path, "--output", out)
    assert code == 0, err
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["message"] for r in rows] == ["$SPY up", "", "$SPY down", "   ", "flat"]
    assert [r["label"] == "" for r in rows] == [False, True, False, True, False]
    assert "wrote 5 predictions" in err and "2 message(s) have no label" in err


def test_non_utf8_stdin_is_one_line_error(small_model_dir, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"$SPY up\n\xff\xfe tr\xe8s\n"), encoding="utf-8"))
    code, out, err = run_cli(capsys, "predict", "--model", small_model_dir)
    assert_one_line_error(code, out, err, "stdin", "UTF-8", "line 2")


def test_predict_from_text_only_stdin(small_model_dir, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("$SPY up\r\n$SPY down\n"))
    code, out, _ = run_cli(capsys, "predict", "--model", small_model_dir, "--json")
    assert code == 0
    assert [r["message"] for r in json_lines(out)] == ["$SPY up", "$SPY down"]


# --------------------------------------------------------------------------- predict outputs


def test_output_csv_and_jsonl(small_model_dir, capsys, tmp_path, real_rows) -> None:
    messages = [r["message"] for r in real_rows]  # some with newlines, quotes and commas
    source = write_input(tmp_path / "in.csv", "csv", messages)
    expected = expected_rows(small_model_dir, messages)

    target = tmp_path / "out" / "predictions.csv"
    code, out, err = run_cli(capsys, "predict", "--model", small_model_dir, "--input", source, "--output", target)
    assert code == 0 and out == ""
    assert err == f"wrote {len(messages)} predictions to {target}\n"
    with target.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["message", "label", "p_bullish"]
    assert [{**r, "p_bullish": float(r["p_bullish"])} for r in rows] == expected

    jsonl = tmp_path / "out" / "predictions.jsonl"
    code, out, _ = run_cli(capsys, "predict", "--model", small_model_dir, "--input", source, "--output", jsonl)
    assert code == 0 and out == ""
    assert json_lines(jsonl.read_text(encoding="utf-8")) == expected
    assert no_temp_files(tmp_path / "out")
    # Ordinary permissions, as if written with open().
    reference = tmp_path / "out" / "reference"
    reference.write_text("")
    assert jsonl.stat().st_mode & 0o777 == reference.stat().st_mode & 0o777


def test_existing_output_untouched_when_the_run_fails(small_model_dir, capsys, tmp_path, monkeypatch) -> None:
    target = tmp_path / "predictions.csv"
    target.write_text("precious\n", encoding="utf-8")
    code, out, err = run_cli(
        capsys, "predict", "--model", small_model_dir, "--input", tmp_path / "missing.csv", "--output", target
    )
    assert_one_line_error(code, out, err, "missing.csv")
    assert target.read_text(encoding="utf-8") == "precious\n"

    # A failure half way through writing leaves the old file and no temp file.
    from stocksent.writers import TableWriter

    def write_half_then_fail(self, batch):
        self._handle.write(b"message,label,p_bullish\npartial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(TableWriter, "write", write_half_then_fail)
    code, out, err = run_cli(capsys, "predict", "--model", small_model_dir, "--output", target, "$SPY up")
    assert_one_line_error(code, out, err, "No space left on device", str(target))
    assert target.read_text(encoding="utf-8") == "precious\n"
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.csv"]


def test_output_to_a_directory_is_an_error(small_model_dir, capsys, tmp_path) -> None:
    code, out, err = run_cli(capsys, "predict", "--model", small_model_dir, "--output", tmp_path, "$SPY up")
    assert_one_line_error(code, out, err, str(tmp_path))
    assert tmp_path.is_dir() and not list(tmp_path.iterdir())
    assert not list(tmp_path.parent.glob(f".{tmp_path.name}.*"))  # the temp file was beside the target


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def bad_inputs(tmp_path) -> dict[str, Path]:
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "latin1.txt").write_bytes("$SPY très bien\n".encode("latin-1"))
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "blank.txt").write_bytes(b"\n  \n")
    (tmp_path / "no-message.csv").write_text("id,sentiment\n1,bullish\n", encoding="utf-8")
    (tmp_path / "broken.csv.gz").write_bytes(gzip.compress(b"message\nhello\n")[:15])
    return {
        "missing": tmp_path / "missing.csv",
        "directory": tmp_path / "a-directory",
        "non-utf8": tmp_path / "latin1.txt",
        "empty": tmp_path / "empty.csv",
        "blank": tmp_path / "blank.txt",
        "no-message-column": tmp_path / "no-message.csv",
        "truncated-gzip": tmp_path / "broken.csv.gz",
    }


@pytest.mark.parametrize(
    "case, words",
    [
        ("missing", ["no such file"]),
        ("directory", ["directory"]),
        ("non-utf8", ["UTF-8"]),
        ("empty", ["empty"]),
        ("blank", ["empty"]),
        ("no-message-column", ["message"]),
        ("truncated-gzip", ["gzip"]),
    ],
)
def test_bad_input_file(small_model_dir, capsys, bad_inputs, case, words) -> None:
    path = bad_inputs[case]
    code, out, err = run_cli(capsys, "predict", "--model", small_model_dir, "--input", path)
    assert_one_line_error(code, out, err, str(path), *words)


def test_bad_data_file_for_evaluate_and_train(small_model_dir, capsys, bad_inputs, tmp_path) -> None:
    for case in ("missing", "directory", "non-utf8", "empty"):
        code, out, err = run_cli(capsys, "evaluate", "--model", small_model_dir, "--data", bad_inputs[case])
        assert_one_line_error(code, out, err, str(bad_inputs[case]))
        code, out, err = run_cli(capsys, "train", "--data", bad_inputs[case], "--out", tmp_path / f"m-{case}")
        assert_one_line_error(code, out, err, str(bad_inputs[case]))


@pytest.mark.parametrize(
    "breakage",
    [
        "missing-dir",
        "no-weights",
        "no-config",
        "no-vocab",
        "garbage-weights",
        "truncated-weights",
        "bad-json",
        "vocab-size",
    ],
)
def test_missing_or_corrupted_model(small_model_dir, capsys, tmp_path, breakage) -> None:
    model = tmp_path / "model"
    if breakage != "missing-dir":
        shutil.copytree(small_model_dir, model)
    if breakage.startswith("no-"):
        (
            model / {"no-weights": "model.safetensors", "no-config": "config.json", "no-vocab": "vocab.json"}[breakage]
        ).unlink()
    elif breakage == "garbage-weights":
        (model / "model.safetensors").write_bytes(os.urandom(4096))
    elif breakage == "truncated-weights":
        raw = (model / "model.safetensors").read_bytes()
        (model / "model.safetensors").write_bytes(raw[: len(raw) - 100])
    elif breakage == "bad-json":
        (model / "config.json").write_text('{"model": {', encoding="utf-8")
    elif breakage == "vocab-size":
        vocab = json.loads((model / "vocab.json").read_text())
        (model / "vocab.json").write_text(json.dumps({"words": vocab["words"] + ["extra"]}))
    for command in (["predict", "--model", model, "$SPY up"], ["evaluate", "--model", model]):
        code, out, err = run_cli(capsys, *command)
        assert_one_line_error(code, out, err, str(model))


def test_usage_errors(small_model_dir, capsys, tmp_path, monkeypatch) -> None:
    code, out, err = run_cli(capsys, "predict", "--model", small_model_dir, "--input", tmp_path / "x.txt", "hello")
    assert_one_line_error(code, out, err, "not both")

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal())
    code, out, err = run_cli(capsys, "predict", "--model", small_model_dir)
    assert_one_line_error(code, out, err, "stdin")

    code, out, err = run_cli(capsys, "predict", "--model", small_model_dir, "--backend", "tensorflow", "x")
    assert_one_line_error(code, out, err, "backend")
    code, out, err = run_cli(capsys, "predict", "--model", small_model_dir, "--precision", "float16", "x")
    assert_one_line_error(code, out, err, "precision")

    code, out, err = run_cli(capsys, "train", "--data", DATA_PATH, "--out", small_model_dir)
    assert_one_line_error(code, out, err, "--resume")

    code, out, err = run_cli(capsys, "train", "--out", tmp_path / "new", "--resume")
    assert_one_line_error(code, out, err, "nothing to resume")


def test_resume_does_not_silently_ignore_explicit_epochs(small_model_dir, capsys, tmp_path) -> None:
    model = tmp_path / "model"
    shutil.copytree(small_model_dir, model)
    assert json.loads((model / "config.json").read_text())["train"]["epochs"] == 2
    code, out, err = run_cli(capsys, "train", "--out", model, "--resume", "--epochs", "3", "--threads", "1")
    history = json.loads((model / "metrics.json").read_text())["history"]
    # Either honour --epochs (continue to epoch 3) or refuse it with a one-line error.
    assert (code == 0 and len(history) == 3) or (code == 2 and "--epochs" in err)


def test_version_and_help(capsys) -> None:
    from stocksent import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"stocksent {__version__}\n"
    with pytest.raises(SystemExit) as info:
        main([])  # a command is required: argparse's usage error, exit 2
    assert info.value.code == 2
