"""The index plot: a real PNG, drawn without pyplot."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from conftest import DATA_PATH
from stocksent.errors import StocksentError
from stocksent.signals import sentiment_index
from stocksent.signals.plot import index_figure, read_prices, save_png

EMOTIONS = DATA_PATH.parent / "StockEmotions_2020.csv.gz"
PRICES = DATA_PATH.parent / "StockEmotions_2020_prices.csv.gz"


class Constant:
    threshold = 0.5

    def predict_proba(self, texts):
        return np.array([0.9 if len(t) % 3 else 0.2 for t in texts], dtype=np.float32)


@pytest.fixture(scope="module")
def index() -> pd.DataFrame:
    if not EMOTIONS.is_file():
        pytest.fail(f"real dataset missing: expected it at {EMOTIONS}")
    return sentiment_index(pd.read_csv(EMOTIONS, nrows=2000), Constant(), tickers=["TSLA", "AAPL"])


def test_png_with_prices_is_written_and_not_blank(index, tmp_path):
    pyplot_loaded = "matplotlib.pyplot" in sys.modules
    fig = index_figure(index, ["TSLA", "AAPL"], read_prices(PRICES), freq="1D")
    assert len(fig.axes) == 6  # per ticker: index, volume, price
    assert "N = " in fig.subfigs[0]._suptitle.get_text() and "daily" in fig.subfigs[0]._suptitle.get_text()
    path = tmp_path / "index.png"
    save_png(fig, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000
    import matplotlib.image

    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 600
    assert pixels[..., :3].std() > 0.05  # lines, bars and text, not an empty canvas
    assert ("matplotlib.pyplot" in sys.modules) == pyplot_loaded  # no pyplot, no backend switch


def test_without_prices_two_panels_and_unknown_ticker_is_a_user_error(index):
    fig = index_figure(index, ["AAPL"])
    assert len(fig.axes) == 2
    with pytest.raises(StocksentError, match="no rows for ZZZ"):
        index_figure(index, ["ZZZ"])


def test_prices_file_needs_date_ticker_close(tmp_path):
    bad = tmp_path / "p.csv"
    bad.write_text("day,ticker,price\n2020-01-02,AAPL,1\n")
    with pytest.raises(StocksentError, match="date,ticker,close"):
        read_prices(bad)
