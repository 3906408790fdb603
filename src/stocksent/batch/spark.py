"""Spark: score DataFrames with the same `BatchScorer` as `stocksent score` (extra `stocksent[spark]`).

- `sentiment_udf(model)`: a column function built on `pyspark.ml.functions.predict_batch_udf`, so
  the model is loaded once per Python worker and fed numpy batches:
  `df.withColumn("p_bullish", sentiment_udf("runs/demo")("message"))`.
- `score(df, model, text_col=None)`: every column of `df` plus `p_bullish` (float) and `label`
  (string), through `mapInPandas`.

`model` is a model directory every executor can read (local mode, a shared file system), a function
returning one on the executor (`lambda: SparkFiles.get("demo")` after `sc.addFile(dir, recursive=True)`),
or a ready `BatchScorer` (`BatchScorer(dir, embed=True)` carries the model's files in the task
closure, for clusters with no shared path). Probabilities are float32 and equal
`SentimentModel.predict_proba`'s (tests/test_spark.py checks on real messages in `local[2]`).

>>> from stocksent.batch.spark import score                       # doctest: +SKIP
>>> score(spark.read.parquet("s3://lake/stocktwits/"), "/dbfs/models/demo").write.parquet("s3://lake/scored/")
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from stocksent.batch.scorer import BatchScorer, none_for_missing

__all__ = ["score", "sentiment_udf"]


def _scorer(
    model: str | os.PathLike | Callable | BatchScorer, text_column: str | None, batch_rows: int, precision: str
):
    if isinstance(model, BatchScorer):
        return model
    return BatchScorer(model, text_column=text_column, batch_rows=batch_rows, precision=precision)


def sentiment_udf(
    model: str | os.PathLike | Callable | BatchScorer,
    *,
    batch_size: int = 8192,
    precision: str = "float32",
    with_label: bool = False,
):
    """A Spark column function: text column in, `p_bullish` (float) out, or with `with_label` a struct
    `<p_bullish: float, label: string>`.

    >>> df.withColumn("p_bullish", sentiment_udf("runs/demo")("message"))  # doctest: +SKIP
    """
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql.types import FloatType, StringType, StructField, StructType

    scorer = _scorer(model, None, batch_size, precision)

    def make_predict_fn():
        import numpy as np

        from stocksent.labels import labels_for

        scorer.model  # noqa: B018 - loaded here, once per Python worker (predict_batch_udf caches this function)

        def predict(texts):
            # a null message arrives as None or NaN and leaves as NaN, which Spark writes as null
            probs, _ = scorer.score_texts(none_for_missing(texts.tolist()))
            if not with_label:
                return probs
            return {"p_bullish": probs, "label": np.asarray(labels_for(probs, scorer.threshold), dtype=object)}

        return predict

    return_type = (
        StructType([StructField("p_bullish", FloatType()), StructField("label", StringType())])
        if with_label
        else FloatType()
    )
    return predict_batch_udf(make_predict_fn, return_type=return_type, batch_size=batch_size)


def score(
    df: Any,
    model: str | os.PathLike | Callable | BatchScorer,
    text_col: str | None = None,
    *,
    batch_rows: int = 8192,
    precision: str = "float32",
):
    """`df` with `p_bullish` (float) and `label` (string) added; every column kept, rows as they were.

    >>> score(spark.read.json("pages/*.jsonl"), "runs/demo", text_col="body").show()  # doctest: +SKIP
    """
    from pyspark.sql.types import FloatType, StringType, StructField, StructType

    scorer = _scorer(model, text_col, batch_rows, precision)
    scorer = scorer.with_options(text_column=scorer.text_column_of(df.columns))  # resolved once, on the driver
    df = df.drop(*[c for c in ("p_bullish", "label") if c in df.columns])
    fields = [*df.schema.fields, StructField("p_bullish", FloatType()), StructField("label", StringType())]

    def score_partition(frames):
        for frame in frames:
            yield scorer(frame)

    return df.mapInPandas(score_partition, StructType(fields))
