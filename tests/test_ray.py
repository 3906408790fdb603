"""Ray Data with one actor on 2 CPUs (actors x CPUs below the machine's, else the read tasks starve)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ray.data", reason="ray not installed: pip install 'stocksent[ray]'")


@pytest.fixture(scope="module")
def ray_session():
    import ray

    # A local cluster of its own (never one named by RAY_ADDRESS), a small object store (a fresh
    # CI machine's /dev/shm may be small), no dashboard.
    ray.init(
        address="local",
        num_cpus=2,
        object_store_memory=200 * 1024 * 1024,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    context = ray.data.DataContext.get_current()
    before = context.execution_options.preserve_order
    context.execution_options.preserve_order = True  # what a user sets to keep row order
    yield ray
    context.execution_options.preserve_order = before
    ray.shutdown()


def test_map_batches_equals_predict_proba_in_order(ray_session, small_model_dir):
    import pyarrow as pa

    from conftest import DATA_PATH, texts_of
    from stocksent import SentimentModel
    from stocksent.batch.ray import SentimentScorer, score
    from stocksent.labels import LABELS

    texts = [m for m in texts_of(DATA_PATH)[20000:21300] if m.strip()][:1200]
    model = SentimentModel.load(small_model_dir, precision="float32")
    reference = model.predict_proba(texts)
    table = pa.table({"id": list(range(len(texts))), "body": texts})
    ds = ray_session.data.from_arrow([table.slice(0, 500), table.slice(500, 300), table.slice(800)])  # 3 blocks
    out = score(ds, str(small_model_dir), batch_size=400, concurrency=1).to_pandas()
    assert list(out.columns) == ["id", "body", "p_bullish", "label"]
    assert out["id"].tolist() == list(range(len(texts)))
    assert out["body"].tolist() == texts
    np.testing.assert_allclose(out["p_bullish"].to_numpy(), reference, atol=1e-6, rtol=0)
    assert out["label"].tolist() == [LABELS[int(p >= model.threshold)] for p in out["p_bullish"]]

    scorer = SentimentScorer(str(small_model_dir))  # the numpy batch format too
    numpy_out = scorer({"body": np.array(texts[:5], dtype=object), "id": np.arange(5)})
    assert list(numpy_out) == ["body", "id", "p_bullish", "label"]
    np.testing.assert_allclose(numpy_out["p_bullish"], reference[:5], atol=1e-6, rtol=0)
