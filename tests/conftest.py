"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

# The real StockTwits dataset; CI always has it, so its absence is a failure, not a skip.
DATA_PATH = Path(__file__).resolve().parents[2] / "shared" / "data" / "StockTwits_SPY_Sentiment_2017.gz"
EMOTIONS = DATA_PATH.parent / "StockEmotions_2020.csv.gz"  # 10,000 dated messages of 37 tickers, self-tagged
EMOTIONS_PRICES = DATA_PATH.parent / "StockEmotions_2020_prices.csv.gz"  # their daily prices


def write(path: Path, text: str) -> Path:
    """`text` as the UTF-8 bytes of `path` (no newline translation): a test's input file."""
    path.write_bytes(text.encode("utf-8"))
    return path


def assert_one_line(exc: pytest.ExceptionInfo) -> str:
    """The message of a raised StocksentError, checked to be one non-empty line."""
    message = str(exc.value)
    assert message and "\n" not in message
    return message


def records_of(path) -> list[dict]:
    """Every row of a file as {"message", "sentiment"}, read as every command reads it (`stocksent.readers`)."""
    from stocksent.columns import LABEL_COLUMNS, find_column, resolve_text_column
    from stocksent.readers import iter_batches

    rows = []
    for batch in iter_batches(path, strict=True):
        names = batch.schema.names
        tag = find_column(names, LABEL_COLUMNS)
        tags = batch.column(tag).to_pylist() if tag else [None] * batch.num_rows
        rows += [
            {"message": m, "sentiment": t}
            for m, t in zip(batch.column(resolve_text_column(names, None)).to_pylist(), tags)
        ]
    return rows


def texts_of(path) -> list[str]:
    """Every message of a file, in file order."""
    return [r["message"] for r in records_of(path)]


def labelled_of(path) -> tuple[list[str], list[int]]:
    """(messages, labels: 1 bullish, 0 bearish) of a file's labelled rows, in file order (`columns.parse_labels`)."""
    import pyarrow as pa

    from stocksent.columns import parse_labels

    rows = records_of(path)
    labels = parse_labels(pa.array([r["sentiment"] for r in rows], pa.string()), str(path)).tolist()
    kept = [(r["message"], y) for r, y in zip(rows, labels) if y >= 0]
    return [m for m, _ in kept], [y for _, y in kept]


@pytest.fixture(autouse=True, scope="session")
def library_log_lines_on_stderr():
    """The library logs; as the CLI does, show its lines on (the current) stderr, so tests can read them."""
    from stocksent.cli import install_log_handler

    install_log_handler()


@pytest.fixture
def real_data_path() -> Path:
    """Path of the real dataset; fails (never skips) when it is missing."""
    if not DATA_PATH.is_file():
        pytest.fail(f"real dataset missing: expected it at {DATA_PATH}")
    return DATA_PATH


@pytest.fixture(scope="session")
def small_model_dir(tmp_path_factory) -> Path:
    """A real model trained briefly on the first 3,000 real messages, shared by the tests that need one."""
    from stocksent import preset, train

    if not DATA_PATH.is_file():
        pytest.fail(f"real dataset missing: expected it at {DATA_PATH}")
    out = tmp_path_factory.mktemp("model") / "small"
    train(
        preset(
            "default",
            data=str(DATA_PATH),
            out=str(out),
            epochs=2,
            max_examples=3000,
            seed=3,
            embed_size=32,
            lstm_sizes=(16, 8),
            num_threads=1,
            device="cpu",
        )
    )
    return out


@pytest.fixture(scope="session")
def default_model_dir(tmp_path_factory) -> Path:
    """The default preset trained on the whole dataset by `stocksent train`, as a user does (slow:
    minutes; tests using it are marked slow). Its stderr is kept beside it as train.stderr."""
    import subprocess
    import sys

    if not DATA_PATH.is_file():
        pytest.fail(f"real dataset missing: expected it at {DATA_PATH}")
    out = tmp_path_factory.mktemp("default") / "default"
    run = subprocess.run(
        [sys.executable, "-m", "stocksent", "train", "--data", str(DATA_PATH), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    (out.parent / "train.stderr").write_text(run.stderr)
    assert run.returncode == 0, run.stderr[-2000:]
    return out


@pytest.fixture(scope="session")
def emotions_scored(small_model_dir, tmp_path_factory) -> Path:
    """StockEmotions 2020 scored by the small model (`stocksent score`'s output): what `serve --index` serves in tests."""
    from stocksent.batch.files import score_files

    if not EMOTIONS.is_file():
        pytest.fail(f"real dataset missing: expected it at {EMOTIONS}")
    out = tmp_path_factory.mktemp("scored") / "emotions.parquet"
    score_files([EMOTIONS], small_model_dir, out, workers=1)
    return out


@pytest.fixture(scope="session")
def synthetic_model_dir(tmp_path_factory) -> Path:
    """A model directory with random weights and a tiny vocabulary (the words of 300 real messages).

    For tests of behaviour that does not depend on what the model learnt (engines agreeing, files,
    formats, serving, scoring at scale): built in well under a second, unlike a trained one.
    """
    import torch

    from stocksent import SentimentModel
    from stocksent.config import ModelConfig
    from stocksent.model import LSTMClassifier
    from stocksent.text import TextOptions, normalise
    from stocksent.vocab import Vocabulary

    options = TextOptions()
    vocab = Vocabulary.build(normalise(m, options) for m in texts_of(DATA_PATH)[:300])
    torch.manual_seed(11)
    network = LSTMClassifier.from_config(
        ModelConfig(vocab_size=len(vocab), embed_size=16, lstm_sizes=(8, 4), ngram_buckets=64)
    )
    with torch.no_grad():
        for parameter in network.parameters():  # spread the logits, so labels differ across messages
            parameter.normal_(std=0.5)
        for table in (network.embedding, network.ngrams):
            table.weight[0] = 0  # the padding rows stay zero, as training keeps them (padding_idx)
    config = {"text": options.to_dict(), "threshold": 0.5, "preset": "synthetic"}
    out = tmp_path_factory.mktemp("model") / "synthetic"
    return SentimentModel.build(network, vocab, config).save(out)


@pytest.fixture(scope="session")
def spark():
    """Spark local[2], one session for every Spark test (its start-up takes seconds)."""
    import os
    import sys

    from pyspark.sql import SparkSession

    before = {name: os.environ.get(name) for name in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "SPARK_LOCAL_IP")}
    # Executors run this interpreter, which has stocksent; Spark binds to loopback, so a fresh
    # machine whose host name does not resolve still starts.
    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    session = (
        SparkSession.builder.master("local[2]")
        .appName("stocksent-test")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True)
def one_thread():
    """Tests run many small predictions on a shared 2-core machine: one intra-op thread is fastest."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def keep_torch_threads():
    """For tests that run `serve` in process, which sets torch to one thread as the server does."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model(synthetic_model_dir):
    from stocksent import SentimentModel

    return SentimentModel.load(synthetic_model_dir)
