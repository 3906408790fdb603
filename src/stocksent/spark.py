"""The sentiment index of a Spark DataFrame, computed by Spark: `sentiment_index(df, ...)` (extra `stocksent[spark]`).

The same table as the local `stocksent.signals.sentiment_index` on the same rows: the same
columns, counts equal, floats within 1e-9 (tests/test_spark_index.py, on real messages in
`local[2]`), for every option (frequency, calendar, window, neutral band, fill, corrected shares).
Nothing is collected to the driver; the result is a Spark DataFrame, one row per ticker and
period, in no particular order.

Three steps, the local code's own functions inside Spark's Arrow and pandas UDFs wherever the
local code has a vectorised rule, so that no formula exists twice:

1. `mapInArrow`: each batch of messages is read by the index's column rules
   (`signals.inputs.normalise`: times, tickers, ids, tags, reshares), filtered
   (`signals.aggregate.wanted`) and made one row per message and ticker
   (`signals.aggregate.message_rows`: its NYSE session from exchange_calendars or its UTC period,
   the part of the day, bullish / neutral, the histogram bin).
2. Spark SQL: a message id seen before counts once (the local seen-set's rule: the first row in
   the DataFrame's order, among rows of that id on the same UTC day), as a window over (id, day);
   then one aggregate per ticker and period (counts, sums of p and p², distinct users, parts of
   the day, the histogram for EM).
3. `applyInPandas` over hash buckets of tickers, each bucket through `signals.index.index_table`:
   ACC/PACC/EM with their intervals per busy period, the rows laid out on the periods
   (`signals.aggregate.period_rows`: the empty periods within the window), Wilson intervals,
   bullishness, and the z-scores against each ticker's earlier periods only (`signals.index.finish`),
   many tickers per call.

The trailing z-scores are pandas' rolling statistics over each ticker's own earlier periods, in
step 3, rather than Spark SQL window functions: one formula, not two that would disagree where a
window's values are all equal (pandas then gives a spread of exactly 0 and no z-score; a sum of
squares gives round-off). No look-ahead follows from the same code: a period's z-score uses only
the periods before it, whatever follows.

>>> from stocksent.spark import sentiment_index                                          # doctest: +SKIP
>>> scored = spark.read.parquet("s3a://lake/scored/2020/")  # `stocksent score` output   # doctest: +SKIP
>>> sentiment_index(scored, "/dbfs/models/default", freq="1D").write.parquet("s3a://lake/index/2020/")
"""

from __future__ import annotations

import os
from typing import Any

from stocksent.errors import StocksentError
from stocksent.rates import ValidationRates

__all__ = ["sentiment_index"]

_INPUT_COLUMNS = ("reshare_of_id", "reshare_of_created_at", "p_bullish", "label")


def sentiment_index(
    df: Any,
    model: str | os.PathLike | None = None,
    *,
    freq: str = "1D",
    calendar: str = "auto",
    tickers: list[str] | None = None,
    window: int = 20,
    min_periods: int | None = None,
    single_ticker_only: bool = False,
    neutral: tuple[float, float] | None = None,
    fill: bool = False,
    rates: ValidationRates | None = None,
    model_id: str | None = None,
    text_column: str | None = None,
    buckets: int | None = None,
):
    """The sentiment index of a Spark DataFrame of messages, as a Spark DataFrame (columns: `stocksent.signals.index`).

    `df`: scored messages (`stocksent score` output or `stocksent.batch.spark.score`'s: a time,
    tickers or symbols, p_bullish; id, label, sentiment, user where there are), or messages with
    a text column and `model`, which scores them first (`batch.spark.score`). `model`: a model
    directory the driver can read, for the threshold, the model id and rates.json; every other
    option is the local `sentiment_index`'s. `buckets`: how many pandas calls lay out and finish
    the tickers' rows (default `spark.sql.shuffle.partitions`).

    >>> sentiment_index(spark.read.parquet("scored/"), rates=read_rates("runs/default")).show()  # doctest: +SKIP
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from stocksent.signals.aggregate import index_options
    from stocksent.signals.index import checked_min_periods, model_settings

    min_periods = checked_min_periods(window, min_periods)
    _, threshold, found_id, rates = model_settings(model, rates)
    options = index_options(freq, calendar, tickers, threshold, neutral, histogram=rates is not None)
    columns = _columns_of(df.columns)
    if "p_bullish" not in df.columns:
        if model is None:
            raise StocksentError(
                "the messages have no p_bullish column: pass a model directory (model=...) to score them, "
                "or score them first with stocksent.batch.spark.score"
            )
        from stocksent.batch.spark import score

        df = score(df, model, text_col=text_column)
    users, ids = columns["user"] is not None, columns["id"] is not None
    needed = [c for c in columns.values() if c is not None] + [c for c in _INPUT_COLUMNS if c in df.columns]
    layout = _row_schema(users, ids, options["histogram"])
    rows = df.select(*needed).mapInArrow(_message_rows(options, single_ticker_only, layout), layout)
    if ids:
        first = F.min("_row").over(Window.partitionBy("has_key", "mkey", "bucket"))
        rows = rows.withColumn("_first", first).where(F.col("_row") == F.col("_first"))
    rows = rows.where(~F.isnan("p"))  # no words to score: seen (a copy counts for nothing), not counted
    sums = _sums(rows, users, options["histogram"])
    n = buckets or int(df.sparkSession.conf.get("spark.sql.shuffle.partitions", "200"))
    sums = sums.withColumn("_bucket", F.pmod(F.xxhash64("calendar", "ticker"), F.lit(n)))
    finish_bucket = _finish(freq, fill, window, min_periods, model_id or found_id, rates)
    return sums.groupBy("_bucket").applyInPandas(finish_bucket, schema=_output_schema(rates is not None))


def _columns_of(names: list[str]) -> dict[str, str | None]:
    """The input's time, ticker, id, user and tag columns, by the index's column rules; an error without a time or ticker."""
    from stocksent.columns import ID_COLUMNS, LABEL_COLUMNS, TICKER_COLUMNS, TIME_COLUMNS, USER_COLUMNS, find_column

    found = {
        "time": find_column(names, TIME_COLUMNS),
        "ticker": find_column(names, TICKER_COLUMNS),
        "id": find_column(names, ID_COLUMNS),
        "user": find_column(names, USER_COLUMNS),
        "tag": find_column(names, LABEL_COLUMNS),
    }
    if found["time"] is None or found["ticker"] is None:
        missing = " and ".join(
            what
            for what, key in (
                ("a time column (created_at, date)", "time"),
                ("a ticker column (symbols, ticker)", "ticker"),
            )
            if found[key] is None
        )
        raise StocksentError(
            f"the messages lack {missing} (columns: {', '.join(map(repr, names)) or 'none'}); the index needs "
            "a time and a ticker per message"
        )
    return found


def _row_schema(users: bool, ids: bool, histogram: bool):
    """The rows of step 1: `message_rows`' columns, and what the id de-duplication needs."""
    from pyspark.sql.types import BooleanType, ByteType, DoubleType, LongType, StringType, StructField, StructType

    fields = [
        ("calendar", StringType()),
        ("ticker", StringType()),
        ("key", LongType()),
        ("part", ByteType()),
        ("p", DoubleType()),
        ("bull", BooleanType()),
        ("neutral", BooleanType()),
        ("over", BooleanType()),
        ("tag", ByteType()),
        ("multi", BooleanType()),
    ]
    if users:
        fields += [("has_user", BooleanType()), ("user", LongType())]
    if histogram:
        fields += [("bin", ByteType())]
    if ids:  # _row: the message's place in the DataFrame (partition, row), as monotonically_increasing_id numbers it
        fields += [("_row", LongType()), ("has_key", BooleanType()), ("mkey", LongType()), ("bucket", LongType())]
    return StructType([StructField(name, kind, nullable=False) for name, kind in fields])


def _message_rows(options: dict, single_ticker_only: bool, layout):
    """Step 1 as a `mapInArrow` function: Arrow batches of messages in, Arrow batches of `message_rows` out."""
    names = layout.fieldNames()

    def rows_of(batches):
        import numpy as np
        import pyarrow as pa
        from pyspark import TaskContext
        from pyspark.sql.pandas.types import to_arrow_schema

        from stocksent.signals.aggregate import message_rows, wanted
        from stocksent.signals.inputs import normalise
        from stocksent.signals.periods import NS_DAY

        schema = to_arrow_schema(layout)
        offset = TaskContext.get().partitionId() << 33
        for batch in batches:
            frame, _ = normalise(batch, need_text=False)
            frame = frame[wanted(frame, options["tickers"], single_ticker_only)].reset_index(drop=True)
            rows = message_rows(frame, **options)
            message = rows["message"].to_numpy()
            out = {name: rows[name].to_numpy() for name in names if name in rows}
            if "user" in out:
                out["user"] = out["user"].astype(np.uint64).view(np.int64)
            if "_row" in names:
                has_key = frame["has_key"].to_numpy(dtype=bool)[message]
                place = offset + frame["row"].to_numpy(dtype=np.int64)[message]
                key = frame["key"].to_numpy().astype(np.uint64).view(np.int64)[message]
                out["_row"], out["has_key"] = place, has_key
                out["mkey"] = np.where(has_key, key, place)  # no id: a key of its own, never a duplicate
                out["bucket"] = np.where(has_key, frame["ts"].to_numpy()[message] // NS_DAY, 0)
            offset += batch.num_rows
            yield pa.RecordBatch.from_arrays(
                [pa.array(out[name], type=schema.field(name).type) for name in names], schema=schema
            )

    return rows_of


def _sums(rows, users: bool, histogram: bool):
    """Step 2's sums per (calendar, ticker, key): the columns `IndexBuilder` adds up, by the same names.

    Distinct authors in two steps, the sums per period and author first (the rows with no author
    one group), then per period counting the authors: Spark's countDistinct beside forty other
    aggregates would copy every row once per kind of aggregate (its Expand).
    """
    from pyspark.sql import functions as F

    keys = ("calendar", "ticker", "key")
    if not users:
        return rows.groupBy(*keys).agg(*_aggregates(users, histogram), F.lit(0).cast("long").alias("n_users"))
    author = F.when(F.col("has_user"), F.col("user")).alias("author")
    by_author = rows.groupBy(*keys, author).agg(*_aggregates(users, histogram))
    names = [name for name in by_author.columns if name not in (*keys, "author")]
    return by_author.groupBy(*keys).agg(
        *(F.sum(name).alias(name) for name in names), F.count("author").alias("n_users")
    )


def _aggregates(users: bool, histogram: bool) -> list:
    """The sums of one group of `message_rows`, n_users apart."""
    from pyspark.sql import functions as F

    from stocksent.signals.aggregate import PART_COLUMNS
    from stocksent.signals.quantify import P_BINS

    def count(condition, name: str):
        return F.sum(F.when(condition, 1).otherwise(0)).cast("long").alias(name)

    p = F.col("p")
    found = [
        F.count(F.lit(1)).alias("n_msgs"),
        F.sum(p).alias("sum_p"),
        F.sum(p * p).alias("sum_p2"),
        count(F.col("bull"), "n_bull"),
        count(F.col("neutral"), "n_neutral"),
        count(F.col("over"), "n_over"),
        count(F.col("tag") == 1, "n_tagged_bull"),
        count(F.col("tag") == 0, "n_tagged_bear"),
        count(F.col("has_user"), "n_with_user") if users else F.lit(0).cast("long").alias("n_with_user"),
        count(F.col("multi"), "n_multi"),
        *(count(F.col("part") == code, name) for code, name in enumerate(PART_COLUMNS)),
    ]
    if histogram:
        found += [count(F.col("bin") == i, f"hist_n_{i}") for i in range(P_BINS)]
        found += [F.sum(F.when(F.col("bin") == i, p).otherwise(0.0)).alias(f"hist_p_{i}") for i in range(P_BINS)]
    return found


def _finish(freq: str, fill: bool, window: int, min_periods: int, model_id: str | None, rates):
    """Step 3 as an `applyInPandas` function: one bucket's per-period sums in, its index rows out."""
    model_id = model_id or "input p_bullish"

    def finish_bucket(sums):
        from stocksent.signals.index import index_table

        sums = sums.drop(columns="_bucket")
        return index_table(
            sums, freq=freq, window=window, min_periods=min_periods, fill=fill, model_id=model_id, rates=rates
        )

    return finish_bucket


def _output_schema(corrected: bool):
    """The index's columns as Spark types, in the local table's order."""
    from pyspark.sql.types import (
        BooleanType,
        DateType,
        DoubleType,
        LongType,
        StringType,
        StructField,
        StructType,
        TimestampType,
    )

    from stocksent.signals.index import COLUMNS, CORRECTED

    names = list(COLUMNS)
    if corrected:
        at = names.index("ci_hi") + 1
        names[at:at] = CORRECTED
    kinds = {
        "ticker": StringType(),
        "calendar": StringType(),
        "session": StringType(),
        "model_id": StringType(),
        "period_start": TimestampType(),
        "period_end": TimestampType(),
        "session_date": DateType(),
    }

    def kind(name: str):
        if name in kinds:
            return kinds[name]
        if name.endswith("_clipped"):
            return BooleanType()
        return LongType() if name.startswith("n_") else DoubleType()

    return StructType([StructField(name, kind(name)) for name in names])
