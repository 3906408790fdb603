"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

# The real StockTwits dataset; CI always has it, so its absence is a failure, not a skip.
DATA_PATH = Path(__file__).resolve().parents[2] / "shared" / "data" / "StockTwits_SPY_Sentiment_2017.gz"


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


@pytest.fixture(autouse=True)
def one_thread():
    """Tests run many small predictions on a shared 2-core machine: one intra-op thread is fastest."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model(small_model_dir):
    from stocksent import SentimentModel

    return SentimentModel.load(small_model_dir)
