"""Tests for stocksent.training: what a run records, determinism, resume, and the per-epoch line.

Three tiny runs on the first 2,500 real messages are shared by the module: an uninterrupted one, the
same run again, and the same run stopped after epoch 2 and resumed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.nn.functional import binary_cross_entropy_with_logits

from conftest import DATA_PATH, labelled_of, records_of
from stocksent import StocksentError, TrainConfig, preset, train
from stocksent.batching import pad
from stocksent.dataset import DATASET_SHA256
from stocksent.evaluation.metrics import classification_metrics
from stocksent.model import LSTMClassifier
from stocksent.splits import load_splits
from stocksent.text import TextOptions, normalise
from stocksent.training.epochs import shard_gradients
from stocksent.vocab import Vocabulary

# CPU: bit-for-bit reproducibility is only promised there.
SETTINGS = dict(
    epochs=3, max_examples=2500, seed=7, embed_size=32, lstm_sizes=(16, 8), batch_size=64, num_threads=1, device="cpu"
)
EPOCH_LINE = re.compile(
    r"^Epoch: (\d+)/(\d+)\.\.\. Batch: (\d+)/(\d+)\.\.\. Train Loss: (\d+\.\d{3})\.\.\. "
    r"Train Accuracy: ([01]\.\d{3})\.\.\. Val Accuracy: ([01]\.\d{3})$"
)


class Interrupted(Exception):
    """Stands in for Ctrl-C or a killed job after an epoch's checkpoint was written."""


def run(out: Path, **overrides) -> tuple[dict, str]:
    """Train and return (metrics, stderr)."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        result = train(preset("default", **{**SETTINGS, "data": str(DATA_PATH), "out": str(out), **overrides}))
    assert result.out == out
    return result.metrics, stderr.getvalue()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    threads = torch.get_num_threads()
    root = tmp_path_factory.mktemp("training")
    try:
        a_metrics, a_err = run(root / "a")
        # The same run on two threads (batch halves side by side), the data given by a relative path.
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(DATA_PATH.parent.parent)
            b_metrics, _ = run(root / "b", data=str(DATA_PATH.relative_to(DATA_PATH.parent.parent)), num_threads=2)

        stopped = root / "stopped"
        seen = []

        def stop_after_epoch_2(row: dict) -> None:
            seen.append(row["epoch"])
            if row["epoch"] == 2:
                raise Interrupted

        with pytest.raises(Interrupted), contextlib.redirect_stderr(io.StringIO()):
            train(
                preset("default", **{**SETTINGS, "data": str(DATA_PATH), "out": str(stopped)}),
                on_epoch=stop_after_epoch_2,
            )
        assert seen == [1, 2]
        assert not (stopped / "metrics.json").exists()  # the state an interrupted run leaves
        resumed_err = io.StringIO()
        with contextlib.redirect_stderr(resumed_err):
            resumed = train(
                preset("default", **{**SETTINGS, "data": str(DATA_PATH), "out": str(stopped), "resume": True})
            )
    finally:
        torch.set_num_threads(threads)
    return {
        "a": root / "a",
        "a_metrics": a_metrics,
        "a_err": a_err,
        "b": root / "b",
        "b_metrics": b_metrics,
        "resumed": stopped,
        "resumed_metrics": resumed.metrics,
        "resumed_err": resumed_err.getvalue(),
    }


def without_seconds(metrics: dict) -> dict:
    return {
        **{k: v for k, v in metrics.items() if k != "seconds_total"},
        "history": [{k: v for k, v in row.items() if k != "seconds"} for row in metrics["history"]],
    }


def read(directory: Path, name: str) -> dict:
    return json.loads((directory / name).read_text(encoding="utf-8"))


def test_batch_halves_sum_to_the_whole_batch_gradient() -> None:
    """Training computes each batch as two shards; their weighted gradients are the batch's."""
    messages, labels = labelled_of(DATA_PATH)
    tokens = [normalise(m) or ["<unk>"] for m in messages[:64]]
    vocab = Vocabulary.build(tokens)
    batch = pad(vocab.encode_many(tokens), np.arange(64))
    y = torch.tensor(labels[:64], dtype=torch.float32)
    torch.manual_seed(0)
    model = LSTMClassifier(len(vocab), 16, (12, 8), keep_prob=1.0, sparse_embedding=True, ngram_buckets=64)
    params = list(model.parameters())
    loss, correct, whole = shard_gradients(
        model, params, binary_cross_entropy_with_logits, batch.ids, batch.lengths, y, 1.0, seed=0
    )
    halves = [
        shard_gradients(
            model, params, binary_cross_entropy_with_logits, batch.ids[rows], batch.lengths[rows], y[rows], 0.5, seed=1
        )
        for rows in (slice(0, 32), slice(32, 64))
    ]
    assert loss == pytest.approx(halves[0][0] + halves[1][0], rel=1e-5)
    assert correct == halves[0][1] + halves[1][1]
    for name, full, first, second in zip([n for n, _ in model.named_parameters()], whole, halves[0][2], halves[1][2]):
        summed = first + second
        torch.testing.assert_close(
            summed.to_dense() if summed.is_sparse else summed,
            full.to_dense() if full.is_sparse else full,
            rtol=1e-4,
            atol=1e-6,
            msg=name,
        )


# --------------------------------------------------------------------------- what a run records


def test_metrics_json_keys_exactly(runs) -> None:
    metrics = read(runs["a"], "metrics.json")
    assert metrics == runs["a_metrics"]
    assert set(metrics) == {"history", "best_epoch", "test", "split", "seconds_total", "calibration", "blend"}
    assert metrics["blend"]["c"] in (2.0, 4.0, 8.0, 16.0)
    assert {"temperature", "threshold", "ece_before", "ece_after"} <= set(metrics["calibration"])
    assert [row["epoch"] for row in metrics["history"]] == [1, 2, 3]
    for row in metrics["history"]:
        assert set(row) == {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"}
        assert 0 <= row["train_accuracy"] <= 1 and 0 <= row["val_accuracy"] <= 1
        assert row["train_loss"] > 0 and row["val_loss"] > 0 and row["seconds"] >= 0
    assert set(metrics["split"]) == {"train", "val", "test"}
    assert set(metrics["test"]) >= {
        "n",
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "confusion",
        "majority_accuracy",
    }
    assert metrics["seconds_total"] >= 0
    # The best epoch is the one with the highest validation accuracy (the first of equals).
    accuracies = [row["val_accuracy"] for row in metrics["history"]]
    assert metrics["best_epoch"] == accuracies.index(max(accuracies)) + 1


def test_split_sizes_are_recorded(runs) -> None:
    metrics, config = read(runs["a"], "metrics.json"), read(runs["a"], "config.json")
    n = 2500 - config["data"]["dropped_empty"]
    assert (
        metrics["split"]
        == config["data"]["split"]
        == {"train": int(n * 0.8), "val": int(n * 0.1), "test": n - int(n * 0.8) - int(n * 0.1)}
    )
    assert metrics["test"]["n"] == metrics["split"]["test"]


def test_test_metrics_are_those_of_the_best_weights(runs) -> None:
    from stocksent import SentimentModel

    config = read(runs["a"], "config.json")
    splits = load_splits(
        DATA_PATH, TextOptions.from_dict(config["text"]), config["data"]["split_seed"], config["data"]["max_examples"]
    ).splits
    model = SentimentModel.load(runs["a"], precision="float32")  # training scores in float32
    expected = classification_metrics(splits.test.labels, model.predict_proba(splits.test.messages), model.threshold)
    assert read(runs["a"], "metrics.json")["test"] == expected


def test_vocabulary_comes_from_the_training_split_only(runs) -> None:
    config = read(runs["a"], "config.json")
    saved = Vocabulary.from_dict(read(runs["a"], "vocab.json"))
    splits = load_splits(
        DATA_PATH, TextOptions.from_dict(config["text"]), config["data"]["split_seed"], config["data"]["max_examples"]
    ).splits
    assert saved.words == Vocabulary.build(splits.train.tokens, config["train"]["min_count"]).words
    train_words = {w for tokens in splits.train.tokens for w in tokens}
    held_out_only = {
        w for tokens in [*splits.val.tokens, *splits.test.tokens] for w in tokens if not w.startswith("$")
    } - train_words
    assert len(held_out_only) > 50
    assert not held_out_only & set(saved.words)
    assert set(saved.encode(sorted(held_out_only)).tolist()) == {1}


def test_config_json_holds_everything_needed_to_reproduce(runs) -> None:
    config = read(runs["a"], "config.json")
    expected = preset("default", **{**SETTINGS, "data": str(DATA_PATH.resolve()), "out": str(runs["a"])})
    assert set(config["train"]) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert TrainConfig.from_dict(config["train"]) == expected
    assert config["text"] == expected.text_options.to_dict()
    calibration = read(runs["a"], "metrics.json")["calibration"]
    assert config["threshold"] == calibration["threshold"] and 0 < config["threshold"] < 1
    assert config["temperature"] == calibration["temperature"] > 0
    assert config["stocksent_version"] and config["python_version"]
    assert config["torch_version"] == torch.__version__
    assert config["data"]["sha256"] == DATASET_SHA256
    assert config["data"]["split_seed"] == 7 and config["data"]["max_examples"] == 2500
    assert config["data"]["split"] == read(runs["a"], "metrics.json")["split"]
    assert config["model"] == {
        "vocab_size": len(read(runs["a"], "vocab.json")["words"]),
        "embed_size": 32,
        "lstm_sizes": [16, 8],
        "keep_prob": 0.5,
        "ngram_buckets": 2**20,
    }


def test_data_path_is_recorded_absolute(runs) -> None:
    config = read(runs["b"], "config.json")  # run b was given a relative --data
    assert Path(config["data"]["path"]).is_absolute()
    assert Path(config["train"]["data"]).is_absolute()


def test_learning_curve_is_a_png(runs) -> None:
    raw = (runs["a"] / "learning_curve.png").read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(raw) > 5000


def test_per_epoch_line_has_the_tutorial_form(runs) -> None:
    lines = [line for line in runs["a_err"].splitlines() if line.startswith("Epoch:")]
    history = runs["a_metrics"]["history"]
    n_batches = math.ceil(runs["a_metrics"]["split"]["train"] / SETTINGS["batch_size"])
    assert len(lines) == 3
    for line, row in zip(lines, history):
        match = EPOCH_LINE.match(line)
        assert match, line
        epoch, epochs, batch, batches, loss, train_acc, val_acc = match.groups()
        assert (int(epoch), int(epochs)) == (row["epoch"], 3)
        assert int(batch) == int(batches) == n_batches
        assert loss == f"{row['train_loss']:.3f}"
        assert train_acc == f"{row['train_accuracy']:.3f}"
        assert val_acc == f"{row['val_accuracy']:.3f}"


# --------------------------------------------------------------------------- determinism and resume


def test_same_seed_twice_gives_identical_results_on_one_thread_or_two(runs) -> None:
    assert read(runs["b"], "config.json")["train"]["num_threads"] == 2
    assert without_seconds(runs["b_metrics"]) == without_seconds(runs["a_metrics"])
    a, b = load_file(runs["a"] / "model.safetensors"), load_file(runs["b"] / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert read(runs["a"], "vocab.json") == read(runs["b"], "vocab.json")


def test_resume_after_an_interruption_ends_like_an_uninterrupted_run(runs) -> None:
    assert without_seconds(runs["resumed_metrics"]) == without_seconds(runs["a_metrics"])
    assert without_seconds(read(runs["resumed"], "metrics.json")) == without_seconds(runs["a_metrics"])
    for name in ("model.safetensors", "checkpoint.safetensors"):
        a, r = load_file(runs["a"] / name), load_file(runs["resumed"] / name)
        assert a.keys() == r.keys(), name
        assert all(torch.equal(a[k], r[k]) for k in a), name
    # Only epoch 3 ran again, and it said where it picked up.
    assert "after epoch 2" in runs["resumed_err"]
    assert [line.split("...")[0] for line in runs["resumed_err"].splitlines() if line.startswith("Epoch:")] == [
        "Epoch: 3/3"
    ]


def test_resuming_a_finished_run_changes_nothing(runs, tmp_path) -> None:
    copy = tmp_path / "done"
    shutil.copytree(runs["a"], copy)
    with contextlib.redirect_stderr(io.StringIO()) as err:
        result = train(preset("default", **{**SETTINGS, "data": str(DATA_PATH), "out": str(copy), "resume": True}))
    assert "Epoch:" not in err.getvalue()
    assert without_seconds(result.metrics) == without_seconds(runs["a_metrics"])


# --------------------------------------------------------------------------- errors


def test_existing_directory_without_resume_is_an_error(runs) -> None:
    before = {p.name: p.read_bytes() for p in runs["a"].iterdir()}
    with pytest.raises(StocksentError, match="--resume"):
        train(preset("default", **{**SETTINGS, "data": str(DATA_PATH), "out": str(runs["a"])}))
    assert {p.name: p.read_bytes() for p in runs["a"].iterdir()} == before


def test_a_failed_run_leaves_no_empty_out_directory(tmp_path) -> None:
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("message,sentiment\n$SPY up,Bullish\n$SPY down,Bearish\n", encoding="utf-8")
    out = tmp_path / "new" / "deeper" / "run"
    with pytest.raises(StocksentError, match="too few"):
        train(preset("default", **{**SETTINGS, "data": str(tiny), "out": str(out)}))
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(StocksentError, match="too few"):
        train(preset("default", **{**SETTINGS, "data": str(tiny), "out": str(existing)}))
    assert existing.is_dir() and list(existing.iterdir()) == []  # a folder it did not make is left


def test_resume_with_nothing_to_resume_is_an_error(tmp_path) -> None:
    with pytest.raises(StocksentError, match="nothing to resume"):
        train(TrainConfig(out=str(tmp_path / "empty"), resume=True))


def test_resume_refuses_options_that_differ_naming_both_values(runs, tmp_path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(runs["a"], copy)
    changed = preset(
        "default", **{**SETTINGS, "data": str(DATA_PATH), "out": str(copy), "resume": True, "epochs": 5, "lr": 0.01}
    )
    with pytest.raises(StocksentError) as info:
        train(changed)
    message = str(info.value)
    assert "--epochs 5 (the run started with 3)" in message and "--lr 0.01 (the run started with 0.002)" in message
    assert "seed" not in message  # equal options are not mentioned


def test_resume_with_another_data_file_is_an_error(runs, tmp_path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(runs["a"], copy)
    other = tmp_path / "other.csv"
    rows = records_of(DATA_PATH)[:60]
    other.write_text(
        "message,sentiment\n"
        + "".join(f'"{r["message"].replace(chr(34), chr(34) * 2)}",{r["sentiment"]}\n' for r in rows),
        encoding="utf-8",
    )
    with pytest.raises(StocksentError, match="sha256"), contextlib.redirect_stderr(io.StringIO()):
        train(preset("default", **{**SETTINGS, "data": str(other), "out": str(copy), "resume": True}))


def test_too_few_messages_is_an_error(tmp_path) -> None:
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("message,sentiment\n$SPY up,bullish\n$SPY down,bearish\n$SPY flat,bullish\n", encoding="utf-8")
    with pytest.raises(StocksentError, match="too few"), contextlib.redirect_stderr(io.StringIO()):
        train(preset("default", data=str(tiny), out=str(tmp_path / "out"), epochs=1))


def test_blend_is_skipped_when_a_split_has_one_class(tmp_path) -> None:
    """A logistic regression needs both classes; a tiny, lopsided file still trains, unblended."""
    rows = [(m, "bullish") for m in labelled_of(DATA_PATH)[0][:29]] + [("$SPY going down", "bearish")]
    lopsided = tmp_path / "lopsided.csv"
    lopsided.write_text(
        "message,sentiment\n" + "".join(f'"{m.replace(chr(34), "")}",{y}\n' for m, y in rows), encoding="utf-8"
    )
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        result = train(
            preset(
                "default",
                **{**SETTINGS, "max_examples": None, "epochs": 1},
                data=str(lopsided),
                out=str(tmp_path / "out"),
            )
        )
    assert result.metrics["blend"] is None
    assert re.search(
        r"blend skipped: the (training|validation)( and validation)? split holds one class only", stderr.getvalue()
    )


def test_cuda_without_a_gpu_is_an_error(tmp_path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(StocksentError, match="--device cpu"):
        train(preset("default", data=str(DATA_PATH), out=str(tmp_path / "out"), device="cuda"))


# --------------------------------------------------------------------------- the run directory


def test_a_second_run_on_a_locked_directory_names_the_first_runs_pid(tmp_path, capsys) -> None:
    import os

    from stocksent.cli import main
    from stocksent.training.rundir import claimed

    out = tmp_path / "busy"
    with claimed(out, resume=False):  # this process is "the other run"
        code = main(["train", "--data", str(DATA_PATH), "--out", str(out), "--max-examples", "500", "--epochs", "1"])
        err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [
        f"stocksent: error: {out} is in use by another training run (PID {os.getpid()}); "
        "wait for it to end or choose another --out"
    ]
    assert sorted(p.name for p in out.iterdir()) == []  # nothing written by the refused run; the lock is gone


def test_a_run_killed_before_its_first_checkpoint_can_be_started_again(tmp_path) -> None:
    out = tmp_path / "early"
    out.mkdir()
    (out / "vocab.json").write_text('{"words": ["<pad>", "<unk>"]}')  # all such a run leaves
    metrics, _ = run(out, epochs=1)
    assert metrics["best_epoch"] == 1 and (out / "config.json").is_file()


def test_an_interrupted_run_is_continued_only_with_resume(runs, tmp_path) -> None:
    copy = tmp_path / "interrupted"
    shutil.copytree(runs["a"], copy)
    (copy / "config.json").unlink()  # what a run stopped mid-way holds: checkpoints, no config.json
    with pytest.raises(StocksentError, match="interrupted run: add --resume"):
        train(preset("default", **{**SETTINGS, "data": str(DATA_PATH), "out": str(copy)}))
    assert not (copy / "config.json").exists()


def test_a_model_directory_is_only_complete_at_the_end(tmp_path) -> None:
    seen: list[set[str]] = []
    out = tmp_path / "watch"

    def look(row: dict) -> None:
        seen.append({p.name for p in out.iterdir()})

    with contextlib.redirect_stderr(io.StringIO()):
        train(preset("default", **{**SETTINGS, "data": str(DATA_PATH), "out": str(out), "epochs": 2}), on_epoch=look)
    assert all("config.json" not in names and "model.safetensors" not in names for names in seen)
    assert {"config.json", "model.safetensors", "vocab.json", "metrics.json"} <= {p.name for p in out.iterdir()}
    assert not (out / ".stocksent.lock").exists()


# --------------------------------------------------------------------------- many files, --split time, --init-from

TINY = ["--epochs", "1", "--embed-size", "16", "--lstm-sizes", "8", "--ngram-buckets", "4096", "--threads", "1"]


@pytest.fixture(scope="module")
def emotion_rows() -> list[dict]:
    """Every 8th row of StockEmotions 2020 (dated, 37 tickers, ids)."""
    import csv
    import gzip

    with gzip.open(DATA_PATH.parent / "StockEmotions_2020.csv.gz", "rt", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))[::8]


def test_train_on_many_inputs_records_every_file_and_evaluate_rebuilds_the_split(
    tmp_path, emotion_rows, monkeypatch, caplog
) -> None:
    import csv
    import gzip

    from stocksent.cli import main
    from stocksent.dataset import sha256_file
    from stocksent.evaluation.evaluate import evaluate
    from stocksent.sentiment import SentimentModel

    third = len(emotion_rows) // 3
    with (tmp_path / "a.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, ["id", "date", "ticker", "sentiment", "message"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(emotion_rows[: third + 20])  # 20 rows again in the API file below: kept once
    api = tmp_path / "api"
    api.mkdir()
    messages = [
        {
            "id": int(r["id"]),
            "body": r["message"],
            "created_at": f"{r['date']}T15:00:00Z",
            "symbols": [{"symbol": r["ticker"]}],
            "entities": {"sentiment": {"basic": r["sentiment"].title()}},
        }
        for r in emotion_rows[third : 2 * third]
    ]
    (api / "page.json").write_text(json.dumps({"messages": messages}), encoding="utf-8")
    (tmp_path / "more").mkdir()
    with gzip.open(tmp_path / "more" / "c.jsonl.gz", "wt", encoding="utf-8") as handle:
        for r in emotion_rows[2 * third :]:
            handle.write(
                json.dumps(
                    {"id": r["id"], "created_at": r["date"], "message": r["message"], "sentiment": r["sentiment"]}
                )
                + "\n"
            )
    out = tmp_path / "model"
    args = ["train", "--data", str(tmp_path / "a.csv"), str(api), str(tmp_path / "more" / "*.jsonl.gz")]
    monkeypatch.setattr("stocksent.training.finalise.BLEND_MAX_TRAIN", 500)  # as 1M of 10M messages would
    with caplog.at_level("INFO", logger="stocksent"):
        assert main([*args, "--out", str(out), "--split", "time", *TINY]) == 0
    assert "fitted on a seeded sample of 500 training messages" in caplog.text
    assert json.loads((out / "metrics.json").read_text())["blend"] is not None
    config = json.loads((out / "config.json").read_text())
    files = config["data"]["files"]
    assert [Path(f["path"]).name for f in files] == ["a.csv", "page.json", "c.jsonl.gz"]
    assert [f["sha256"] for f in files] == [sha256_file(f["path"]) for f in files]
    assert config["data"]["duplicates"] == 20 and config["data"]["split_by"] == "time"
    assert sum(config["data"]["split"].values()) == len(emotion_rows)
    assert config["train"]["data"] == [f["path"] for f in files]
    # evaluate rebuilds the very test split from the record, sha256 checked.
    metrics = json.loads((out / "metrics.json").read_text())["test"]
    again = evaluate(SentimentModel.load(out, precision="float32"))
    assert again["split"] == "test" and again["n"] == metrics["n"] == config["data"]["split"]["test"]
    assert again["accuracy"] == pytest.approx(metrics["accuracy"], abs=1e-9)
    (tmp_path / "a.csv").write_text("id,date,sentiment,message\n1,2020-01-01,bullish,changed\n", encoding="utf-8")
    with pytest.raises(StocksentError, match="not among the files given|sha256"):
        evaluate(SentimentModel.load(out), split="test")


def test_init_from_copies_the_old_rows_and_starts_from_the_old_predictions(small_model_dir, emotion_rows) -> None:
    from stocksent.inference import network_logits
    from stocksent.training.init_from import initial_network, read_base

    base = read_base(small_model_dir)
    options = base.text_options
    tokens = [normalise(r["message"], options) for r in emotion_rows]
    vocab = base.vocab.extended(Vocabulary.build(tokens, min_count=2))
    n_old = len(base.vocab)
    assert vocab.words[:n_old] == base.vocab.words and len(vocab) > n_old + 100
    new = initial_network(base, vocab, sparse_embedding=True)
    old_state, new_state = base.network.state_dict(), new.state_dict()
    assert torch.equal(new_state["embedding.weight"][:n_old], old_state["embedding.weight"])
    unk, ticker = old_state["embedding.weight"][1], old_state["embedding.weight"][base.vocab.ticker_id]
    for word in vocab.words[n_old : n_old + 50]:
        expected = ticker if word.startswith("$") else unk
        assert torch.equal(new_state["embedding.weight"][vocab.index[word]], expected)
    ngrams_old, ngrams_new = old_state["ngrams.weight"], new_state["ngrams.weight"]
    assert torch.equal(ngrams_new[:n_old], ngrams_old[:n_old])  # words
    assert torch.equal(ngrams_new[len(vocab) :], ngrams_old[n_old:])  # word pairs' buckets
    for name in old_state:
        if name not in ("embedding.weight", "ngrams.weight"):
            assert torch.equal(new_state[name], old_state[name]), name
    # Messages of old words only: the very same logits; with new words (each <unk> to the old model),
    # the LSTM sees the same input and only new word pairs' buckets differ.
    known = [t for t in tokens if all(w in base.vocab.index for w in t)]
    assert len(known) > 50
    before = network_logits(base.network, base.vocab.encode_many(known))
    after = network_logits(new, vocab.encode_many(known))
    assert np.allclose(before, after, atol=1e-6)
    before = network_logits(base.network, base.vocab.encode_many(tokens))
    after = network_logits(new, vocab.encode_many(tokens))
    assert np.corrcoef(before, after)[0, 1] > 0.9
    assert ((before >= 0) == (after >= 0)).mean() > 0.9


def test_train_init_from_takes_the_models_options_and_extends_its_vocabulary(small_model_dir, emotion_rows, tmp_path):
    import csv

    path = tmp_path / "e.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, ["id", "date", "ticker", "sentiment", "message"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(emotion_rows)
    out = tmp_path / "continued"
    settings = dict(data=str(path), out=str(out), epochs=1, split="time", num_threads=1, device="cpu", seed=3)
    with contextlib.redirect_stderr(io.StringIO()):
        result = train(preset("default", init_from=str(small_model_dir), **settings))
    old = json.loads((small_model_dir / "config.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["embed_size"] == old["model"]["embed_size"] == 32  # not the preset's 300
    assert config["model"]["lstm_sizes"] == old["model"]["lstm_sizes"] and config["text"] == old["text"]
    assert config["train"]["init_from"] == str(small_model_dir)
    old_words = json.loads((small_model_dir / "vocab.json").read_text())["words"]
    words = json.loads((out / "vocab.json").read_text())["words"]
    assert words[: len(old_words)] == old_words and len(words) > len(old_words)
    assert result.metrics["test"]["n"] == config["data"]["split"]["test"]
    # Resuming the finished run with the same command (init_from's options are not flags) changes nothing.
    with contextlib.redirect_stderr(io.StringIO()):
        again = train(preset("default", init_from=str(small_model_dir), resume=True, **settings))
    assert without_seconds(again.metrics) == without_seconds(result.metrics)
