"""Spark local[2] on real messages: the UDF and score() give SentimentModel.predict_proba's probabilities."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys

import numpy as np
import pytest

pytest.importorskip("pyspark", reason="pyspark not installed: pip install 'stocksent[spark]'")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Java is missing (Spark needs a JVM): install a JDK 17", allow_module_level=True)


@pytest.fixture(scope="module")
def spark():
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


@pytest.fixture(scope="module")
def frame():
    """1,500 real messages and one null, with the columns users keep: id, time, symbols."""
    import pandas as pd

    from conftest import DATA_PATH, texts_of

    texts = [m for m in texts_of(DATA_PATH)[10000:11600] if m.strip()][:1500]
    texts.insert(700, None)
    start = dt.datetime(2017, 3, 1, 14, 30)
    return pd.DataFrame(
        {
            "id": np.arange(len(texts), dtype=np.int64),
            "created_at": [start + dt.timedelta(seconds=7 * i) for i in range(len(texts))],
            "symbols": [["SPY", "QQQ"][: 1 + i % 2] for i in range(len(texts))],
            "message": texts,
        }
    )


def test_score_and_udf_equal_predict_proba_and_keep_every_column(spark, frame, small_model_dir):
    from stocksent import SentimentModel
    from stocksent.batch.spark import score, sentiment_udf
    from stocksent.labels import LABELS

    model = SentimentModel.load(small_model_dir, precision="float32")
    present = frame["message"].notna().to_numpy()
    reference = np.full(len(frame), np.nan)
    reference[present] = model.predict_proba(frame["message"][present].tolist())
    df = spark.createDataFrame(frame).repartition(2)

    scored = score(df, str(small_model_dir))
    assert scored.schema.fieldNames() == ["id", "created_at", "symbols", "message", "p_bullish", "label"]
    assert scored.schema.fields[:4] == df.schema.fields
    out = scored.toPandas().sort_values("id").reset_index(drop=True)
    for name in ("id", "created_at", "message"):
        assert plain(out[name]) == plain(frame[name]), name
    assert [list(s) for s in out["symbols"]] == frame["symbols"].tolist()
    np.testing.assert_allclose(out["p_bullish"].to_numpy(), reference, atol=1e-6, rtol=0)  # NaN where null
    expected = [None if p != p else LABELS[int(p >= model.threshold)] for p in out["p_bullish"].tolist()]
    assert plain(out["label"]) == expected and expected.count(None) == 1

    udf = sentiment_udf(str(small_model_dir), batch_size=500)
    labelled = sentiment_udf(str(small_model_dir), with_label=True)
    got = df.select("id", udf("message").alias("p"), labelled("message").alias("s")).toPandas().sort_values("id")
    np.testing.assert_allclose(got["p"].to_numpy(), reference, atol=1e-6, rtol=0)
    assert [row["label"] for row in got["s"]] == expected
    np.testing.assert_allclose(np.array([row["p_bullish"] for row in got["s"]], float), reference, atol=1e-6, rtol=0)


def plain(series) -> list:
    """Values with None for missing ones (pandas 3 strings hold NaN there, and NaN != NaN)."""
    import pandas as pd

    return [None if pd.isna(v) else v for v in series.tolist()]


def test_model_shipped_with_add_file_is_found_on_the_executors(spark, frame, small_model_dir):
    """The recipe of docs/scoring.md for clusters with no shared path: SparkContext.addFile, SparkFiles.get on executors."""
    from pyspark import SparkFiles

    from stocksent import SentimentModel
    from stocksent.batch.spark import score

    spark.sparkContext.addFile(str(small_model_dir), recursive=True)
    name = small_model_dir.name
    rows = frame[frame["message"].notna()].head(300)
    out = score(spark.createDataFrame(rows).repartition(2), lambda: SparkFiles.get(name)).toPandas().sort_values("id")
    reference = SentimentModel.load(small_model_dir, precision="float32").predict_proba(rows["message"].tolist())
    np.testing.assert_allclose(out["p_bullish"].to_numpy(), reference, atol=1e-6, rtol=0)
