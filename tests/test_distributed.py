"""Distributed training (training/distributed.py) with real processes: gloo over localhost, torch's
elastic launcher behind `train --nproc 2`, and `torchrun -m stocksent train`, on real messages.

Two ranks cut every batch in the halves one process computes (with the same dropout masks), so a
2-process run must train the model of a 1-process run: every rank the same weights after every
step, and the same accuracy, up to float rounding of the summed gradients.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import itertools
import json
import math
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import DATA_PATH
from stocksent import preset, train
from stocksent.config import TrainConfig
from stocksent.errors import StocksentError
from stocksent.training.distributed import World, env_world, threads_per_process

# Tiny and fast: a run is a few seconds of training; most of a launched run is starting Python and torch.
SETTINGS = dict(
    epochs=2,
    max_examples=1500,
    seed=5,
    embed_size=16,
    lstm_sizes=(8,),
    batch_size=64,
    ngram_buckets=4096,
    linear_blend=False,
    device="cpu",
)
FLAGS = [
    "--epochs=2",
    "--max-examples=1500",
    "--seed=5",
    "--embed-size=16",
    "--lstm-sizes=8",
    "--batch-size=64",
    "--ngram-buckets=4096",
    "--no-linear-blend",
    "--device=cpu",
]
EPOCH_LINE = re.compile(r"^Epoch: \d+/\d+\.\.\. Batch: \d+/\d+\.\.\. Train Loss: \d\.\d{3}\.\.\. .*$", re.M)
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
SLICE = Path()  # the first rows of the real file (module fixture `data_slice`): each rank reads only those


@pytest.fixture(scope="module", autouse=True)
def data_slice(tmp_path_factory) -> Path:
    """The real file's first 1,600 messages as a file of their own: every process of every run reads
    the whole --data file before --max-examples takes its first rows, and the full one is 100k rows."""
    global SLICE
    if not DATA_PATH.is_file():
        pytest.fail(f"real dataset missing: expected it at {DATA_PATH}")
    SLICE = tmp_path_factory.mktemp("data") / "spy_first_1600.csv"
    with gzip.open(DATA_PATH, "rt", encoding="utf-8") as source:
        SLICE.write_text("".join(itertools.islice(source, 1601)), encoding="utf-8")
    return SLICE


# One epoch of the training step in this process's world (a launcher's rank, or alone), then its
# weights for the test to compare: what every rank holds, not just what rank 0 writes.
STEP_SCRIPT = """
import json, sys
from pathlib import Path
import numpy as np, torch
from safetensors.numpy import save_file
from stocksent import preset
from stocksent.training.distributed import joined, share_training_state
from stocksent.training.epochs import loss_function, make_optimizers, train_one_epoch
from stocksent.training.prepare import prepare_data
from stocksent.training.run import model_config
from stocksent.model import LSTMClassifier

out, data_path, settings = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
config = preset("default", data=data_path, **settings)
torch.set_num_threads(1)
with joined("cpu") as world:
    data = prepare_data(config, out)
    torch.manual_seed(config.seed + world.rank)  # different on each rank: rank 0's weights must win
    model = LSTMClassifier.from_config(model_config(config, data), sparse_embedding=True)
    optimizers = make_optimizers(model, config)
    share_training_state(world, model, optimizers, {})
    loss, accuracy = train_one_epoch(
        model, optimizers, loss_function(config.loss), data.train_x, data.splits.train.labels,
        config.batch_size, np.random.default_rng([config.seed, 1]), torch.device("cpu"),
        word_dropout=config.word_dropout, world=world,
    )
    save_file({k: v.numpy() for k, v in model.state_dict().items()}, out / f"rank{world.rank}.safetensors")
    (out / f"rank{world.rank}.json").write_text(json.dumps({"loss": loss, "accuracy": accuracy, "size": world.size}))
"""


def settings_json() -> str:
    return json.dumps({**SETTINGS, "lstm_sizes": list(SETTINGS["lstm_sizes"])})


def torchrun(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=ENV)


def digest(weights: dict[str, np.ndarray]) -> str:
    return hashlib.sha256(b"".join(weights[k].tobytes() for k in sorted(weights))).hexdigest()


def without_seconds(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in ("seconds_total", "history")}


@pytest.fixture(scope="module")
def steps(tmp_path_factory, data_slice) -> dict:
    """The epoch's weights on each of 2 torchrun ranks, and of the same epoch in one process."""
    root = tmp_path_factory.mktemp("steps")
    script = root / "step.py"
    script.write_text(STEP_SCRIPT)
    two, one = root / "two", root / "one"
    two.mkdir()
    one.mkdir()
    done = torchrun(str(script), str(two), str(SLICE), settings_json())
    assert done.returncode == 0, done.stderr[-3000:]
    with pytest.MonkeyPatch.context() as mp:  # the same script alone, in this process: a world of one
        for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
            mp.delenv(name, raising=False)
        mp.setattr(sys, "argv", [str(script), str(one), str(SLICE), settings_json()])
        runpy.run_path(str(script), run_name="__main__")
    read = lambda d, r: (load_file(d / f"rank{r}.safetensors"), json.loads((d / f"rank{r}.json").read_text()))  # noqa: E731
    return {"ranks": [read(two, 0), read(two, 1)], "alone": read(one, 0)}


def test_every_rank_ends_the_epoch_with_the_same_weights(steps) -> None:
    (w0, info0), (w1, info1) = steps["ranks"]
    assert info0["size"] == info1["size"] == 2
    assert digest(w0) == digest(w1)
    assert info0 == info1  # loss and accuracy gathered from both ranks: the same numbers on both


def test_two_ranks_train_the_weights_of_one_process(steps) -> None:
    (w0, info0), _ = steps["ranks"]
    alone, info = steps["alone"]
    assert info["size"] == 1
    assert sorted(w0) == sorted(alone)
    for name in alone:  # the same halves and dropout masks; only the sums' rounding may differ
        np.testing.assert_allclose(w0[name], alone[name], rtol=0, atol=1e-5, err_msg=name)
    assert math.isclose(info0["loss"], info["loss"], rel_tol=1e-6)
    assert info0["accuracy"] == info["accuracy"]
    moved = max(float(np.abs(w0[k]).max()) for k in w0 if k.startswith("lstms"))
    assert moved > 0.01  # the weights did train (a zero step would match trivially)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_slice) -> dict:
    """The same run three ways: one process (the Python API), `train --nproc 2`, and torchrun."""
    root = tmp_path_factory.mktemp("ddp")
    with contextlib.redirect_stderr(io.StringIO()):
        single = train(preset("default", data=str(SLICE), out=str(root / "one"), num_threads=1, **SETTINGS))
    nproc = train_cli("--data", str(SLICE), *FLAGS, "--nproc=2", "--out", str(root / "nproc"))
    assert nproc.returncode == 0, nproc.stderr[-3000:]
    launched = torchrun("-m", "stocksent", "train", "--data", str(SLICE), *FLAGS, "--out", str(root / "torchrun"))
    assert launched.returncode == 0, launched.stderr[-3000:]
    return {"root": root, "single": single.metrics, "nproc": nproc, "torchrun": launched}


def metrics_of(directory: Path) -> dict:
    return json.loads((directory / "metrics.json").read_text())


def test_nproc_2_matches_one_process_accuracy(runs) -> None:
    single, two = runs["single"], metrics_of(runs["root"] / "nproc")
    assert abs(two["test"]["accuracy"] - single["test"]["accuracy"]) <= 0.01
    assert abs(two["test"]["roc_auc"] - single["test"]["roc_auc"]) <= 0.01
    for a, b in zip(two["history"], single["history"]):
        assert abs(a["val_accuracy"] - b["val_accuracy"]) <= 0.01
        assert math.isclose(a["train_loss"], b["train_loss"], rel_tol=1e-4)


def test_nproc_and_torchrun_train_the_same_model(runs) -> None:
    a, b = runs["root"] / "nproc", runs["root"] / "torchrun"
    assert without_seconds(metrics_of(a)) == without_seconds(metrics_of(b))
    assert digest(load_file(a / "model.safetensors")) == digest(load_file(b / "model.safetensors"))


def test_rank_0_alone_prints_and_writes(runs) -> None:
    for name in ("nproc", "torchrun"):
        done = runs[name]
        lines = EPOCH_LINE.findall(done.stderr)
        assert [line.split("...")[0] for line in lines] == ["Epoch: 1/2", "Epoch: 2/2"], done.stderr[-2000:]
        assert done.stdout.count("model: ") == 1
        assert done.stdout.count("best epoch: ") == 1
        directory = runs["root"] / name
        assert (directory / "config.json").is_file()
        assert not list(directory.glob("*.tmp*"))
        recorded = json.loads((directory / "config.json").read_text())["train"]
        assert recorded["epochs"] == 2


def train_cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m stocksent train ARGS` in a process of its own."""
    command = [sys.executable, "-m", "stocksent", "train", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=240, env=ENV)


def stopped_after_one_epoch(out: Path) -> None:
    """A one-process run in `out` stopped after its first epoch's checkpoint: one to resume."""

    class Stop(Exception):
        pass

    def stop(row: dict) -> None:
        raise Stop

    with pytest.raises(Stop), contextlib.redirect_stderr(io.StringIO()):
        train(preset("default", data=str(SLICE), out=str(out), num_threads=1, **SETTINGS), on_epoch=stop)


def test_resume_with_nproc_continues_a_one_process_run(runs, tmp_path) -> None:
    """Stopped after epoch 1 in one process, finished by 2 processes: the model of the uninterrupted run."""
    out = tmp_path / "resumed"
    stopped_after_one_epoch(out)
    done = train_cli("--data", str(SLICE), *FLAGS, "--out", str(out), "--resume", "--nproc", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert [line.split("...")[0] for line in EPOCH_LINE.findall(done.stderr)] == ["Epoch: 2/2"]
    resumed, single = metrics_of(out), runs["single"]
    assert abs(resumed["test"]["accuracy"] - single["test"]["accuracy"]) <= 0.01
    assert math.isclose(resumed["history"][1]["train_loss"], single["history"][1]["train_loss"], rel_tol=1e-4)
    assert json.loads((out / "config.json").read_text())["train"]["nproc"] == 2


def test_an_existing_model_directory_is_one_error_line_from_every_rank(runs) -> None:
    """Rank 0 finds the model (its directory may be on its machine only) and every rank stops with its
    error: one `stocksent: error:` line from the parent, status 2, the model left as it was."""
    before = (runs["root"] / "nproc" / "model.safetensors").read_bytes()
    done = train_cli("--data", str(SLICE), *FLAGS, "--nproc=2", "--out", str(runs["root"] / "nproc"))
    assert done.returncode == 2, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("stocksent: error: ") and "already holds a model" in last
    assert (runs["root"] / "nproc" / "model.safetensors").read_bytes() == before


def test_env_world_reads_the_launchers_variables(monkeypatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert env_world() == World()
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    world = env_world()
    assert (world.rank, world.size, world.local_rank, world.local_size, world.is_main) == (3, 4, 1, 2, False)
    assert threads_per_process(world) == max(1, len(os.sched_getaffinity(0)) // 2)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(StocksentError, match="RANK=4 WORLD_SIZE=4"):
        env_world()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(StocksentError, match="RANK='x'"):
        env_world()


def test_nproc_is_checked_and_free_on_resume() -> None:
    with pytest.raises(StocksentError, match="--nproc must be a whole number from 1"):
        preset("default", nproc=0)
    from stocksent.training.checkpoint import RESUME_FREE

    assert "nproc" in RESUME_FREE
    assert TrainConfig().nproc == 1


def one_clean_error_line(done: subprocess.CompletedProcess, *words: str) -> str:
    """A user's error from `train --nproc 2`: exit 2 and the one `stocksent: error:` line one process
    gives, with no traceback and none of the launcher's report (py_callstack) in it or around it."""
    assert done.returncode == 2, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("stocksent: error: ")]
    assert len(errors) == 1, done.stderr[-3000:]
    for bad in ("Traceback", "py_callstack", "extraInfo", "ChildFailedError", "ProcessRaisedException"):
        assert bad not in done.stderr, done.stderr[-3000:]
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def test_an_interrupted_directory_without_resume_is_one_clean_line_with_nproc(tmp_path) -> None:
    out = tmp_path / "interrupted"
    out.mkdir()
    (out / "checkpoint.json").write_text("{}")
    done = train_cli("--data", str(SLICE), *FLAGS, "--nproc=2", "--out", str(out))
    one_clean_error_line(done, "holds an interrupted run", "--resume")


def test_resume_with_a_changed_flag_is_one_clean_line_with_nproc(tmp_path) -> None:
    out = tmp_path / "stopped"
    stopped_after_one_epoch(out)
    changed = [flag if not flag.startswith("--seed") else "--seed=6" for flag in FLAGS]
    done = train_cli("--data", str(SLICE), *changed, "--out", str(out), "--resume", "--nproc", "2")
    one_clean_error_line(done, "--seed 6 (the run started with 5)")
