"""`stocksent.train` launched by Spark's TorchDistributor and by Ray Train's TorchTrainer (real Spark
local[2], real Ray, 2 CPU ranks each): the same entry point as torchrun, the same model as one process.

Each runs in its own Python process (a Spark session, a Ray cluster), on a slice of the real messages.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import DATA_PATH
from stocksent import preset, train

pytestmark = pytest.mark.slow

OPTIONS = dict(
    epochs=2,
    max_examples=1500,
    seed=5,
    embed_size=16,
    lstm_sizes=[8],
    ngram_buckets=4096,
    linear_blend=False,
    device="cpu",
)

SPARK = """
import json, sys
from pyspark.sql import SparkSession
from pyspark.ml.torch.distributor import TorchDistributor

def train_on_spark(options, ranks):
    import os, pathlib
    import torch.distributed as dist
    from stocksent import preset, train
    result = train(preset("default", **options))
    seen = {"rank": result.rank, "world_size": int(os.environ["WORLD_SIZE"]), "left_a_group": dist.is_initialized()}
    pathlib.Path(ranks, f"rank{result.rank}.json").write_text(json.dumps({**seen, "has_metrics": bool(result.metrics)}))
    return result.metrics

options, ranks = json.loads(sys.argv[1]), sys.argv[2]
spark = SparkSession.builder.master("local[2]").appName("stocksent-ddp").getOrCreate()
try:
    metrics = TorchDistributor(num_processes=2, local_mode=True, use_gpu=False).run(train_on_spark, options, ranks)
finally:
    spark.stop()
print("METRICS " + json.dumps(metrics))
"""

RAY = """
import json, sys
import ray
from ray.train import RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

def train_loop(options):
    import pathlib
    import ray.train
    import torch.distributed as dist
    from stocksent import preset, train
    ranks = options.pop("ranks")
    result = train(preset("default", **options))
    seen = {"rank": result.rank, "world_size": dist.get_world_size(), "has_metrics": bool(result.metrics)}
    pathlib.Path(ranks, f"rank{result.rank}.json").write_text(json.dumps(seen))
    ray.train.report({"has_metrics": bool(result.metrics)})

options, storage = json.loads(sys.argv[1]), sys.argv[2]
ray.init(num_cpus=2, include_dashboard=False)
try:
    TorchTrainer(
        train_loop,
        train_loop_config=options,
        scaling_config=ScalingConfig(num_workers=2, use_gpu=False, resources_per_worker={"CPU": 1}),
        run_config=RunConfig(storage_path=storage),
    ).fit()
finally:
    ray.shutdown()
"""


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> tuple[Path, dict]:
    """The data slice, and the metrics of the run in one process."""
    if not DATA_PATH.is_file():
        pytest.fail(f"real dataset missing: expected it at {DATA_PATH}")
    root = tmp_path_factory.mktemp("launchers")
    data = root / "spy_first_1600.csv"
    with gzip.open(DATA_PATH, "rt", encoding="utf-8") as source:
        data.write_text("".join(itertools.islice(source, 1601)), encoding="utf-8")
    with contextlib.redirect_stderr(io.StringIO()):
        result = train(preset("default", data=str(data), out=str(root / "one"), num_threads=1, **OPTIONS))
    return data, result.metrics


def run_script(script: str, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    return done


def ranks_seen(directory: Path) -> list[dict]:
    """What each rank's train() returned, as the scripts recorded it."""
    return [json.loads(p.read_text()) for p in sorted(directory.glob("rank*.json"))]


def same_model(metrics: dict, single: dict) -> None:
    assert abs(metrics["test"]["accuracy"] - single["test"]["accuracy"]) <= 0.01
    for a, b in zip(metrics["history"], single["history"], strict=True):
        assert abs(a["val_accuracy"] - b["val_accuracy"]) <= 0.01


def test_torch_distributor_runs_train_as_two_ranks(single, tmp_path) -> None:
    data, metrics = single
    out, ranks = tmp_path / "spark", tmp_path / "ranks"
    ranks.mkdir()
    done = run_script(SPARK, json.dumps({**OPTIONS, "data": str(data), "out": str(out)}), str(ranks))
    # The group train() created is gone when it returns (destroy_process_group). Every rank returns rank 0's
    # metrics: TorchDistributor keeps the output file the last rank wrote, and its wrapper of torchrun exits
    # 0 even when a rank failed, so a rank that left early (with {}) could stand for the run.
    assert ranks_seen(ranks) == [
        {"rank": 0, "world_size": 2, "left_a_group": False, "has_metrics": True},
        {"rank": 1, "world_size": 2, "left_a_group": False, "has_metrics": True},
    ]
    returned = json.loads(done.stdout.split("METRICS ", 1)[1])  # what rank 0 returned
    assert returned == json.loads((out / "metrics.json").read_text())
    same_model(returned, metrics)


def test_ray_torch_trainer_runs_train_as_two_ranks(single, tmp_path) -> None:
    data, metrics = single
    out, ranks = tmp_path / "ray", tmp_path / "ranks"
    ranks.mkdir()
    options = {**OPTIONS, "data": str(data), "out": str(out), "ranks": str(ranks)}
    run_script(RAY, json.dumps(options), str(tmp_path / "store"))
    assert ranks_seen(ranks) == [
        {"rank": 0, "world_size": 2, "has_metrics": True},
        {"rank": 1, "world_size": 2, "has_metrics": True},
    ]
    same_model(json.loads((out / "metrics.json").read_text()), metrics)
