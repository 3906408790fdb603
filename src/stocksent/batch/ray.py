"""Ray Data: score a `ray.data.Dataset` with the same `BatchScorer` (extra `stocksent[ray]`).

`SentimentScorer` is a callable class for `Dataset.map_batches`: each actor loads the model once,
then adds `p_bullish` (float32) and `label` to every batch (pyarrow, pandas or numpy-dict format).
`score(ds, model)` is the usual call. Keep actors × CPUs per actor below the cluster's CPUs: a pool
that takes every CPU starves Ray Data's read tasks and the pipeline hangs. Ray Data may reorder
blocks; `ray.data.DataContext.get_current().execution_options.preserve_order = True` keeps the input's
row order (tests/test_ray.py checks it on three blocks).

>>> import ray                                                     # doctest: +SKIP
>>> from stocksent.batch.ray import score
>>> ds = score(ray.data.read_parquet("s3://lake/stocktwits/"), "/shared/models/demo", concurrency=3)
>>> ds.write_parquet("s3://lake/scored/")
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from stocksent.batch.scorer import BatchScorer

__all__ = ["SentimentScorer", "score"]


class SentimentScorer:
    """`ds.map_batches(SentimentScorer, fn_constructor_kwargs={"model": dir}, concurrency=1, batch_format="pyarrow")`."""

    def __init__(
        self,
        model: str | os.PathLike | Callable | BatchScorer,
        text_column: str | None = None,
        batch_rows: int = 8192,
        precision: str = "float32",
    ):
        if isinstance(model, BatchScorer):
            self.scorer = model.with_options(text_column=text_column) if text_column else model
        else:
            self.scorer = BatchScorer(model, text_column=text_column, batch_rows=batch_rows, precision=precision)
        self.scorer.model  # noqa: B018 - loaded when the actor starts, not on its first batch

    def __call__(self, batch: Any) -> Any:
        if isinstance(batch, dict):  # Ray's "numpy" batch format: {column: ndarray}
            import pandas as pd

            scored = self.scorer(pd.DataFrame({k: list(v) if v.ndim > 1 else v for k, v in batch.items()}))
            return {name: scored[name].to_numpy() for name in scored.columns}
        return self.scorer(batch)


def score(
    ds: Any,
    model: str | os.PathLike | Callable | BatchScorer,
    text_column: str | None = None,
    *,
    batch_size: int = 8192,
    concurrency: int = 1,
    num_cpus: float = 1,
    precision: str = "float32",
) -> Any:
    """`ds` with `p_bullish` and `label` added, by `concurrency` actors of `num_cpus` CPUs each (lazy, like
    every Ray Data transformation: nothing runs until the result is consumed or written)."""
    return ds.map_batches(
        SentimentScorer,
        fn_constructor_kwargs={
            "model": model,
            "text_column": text_column,
            "batch_rows": batch_size,
            "precision": precision,
        },
        batch_size=batch_size,
        batch_format="pyarrow",
        concurrency=concurrency,
        num_cpus=num_cpus,
    )
