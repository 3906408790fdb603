"""BatchScorer: the same probabilities as SentimentModel on Arrow and pandas, picklable, loaded once."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from conftest import texts_of
from stocksent.batch import scorer as scorer_module
from stocksent.batch.scorer import BatchScorer
from stocksent.errors import StocksentError
from stocksent.labels import LABELS


@pytest.fixture(scope="module")
def messages(small_model_dir) -> list[str]:
    from conftest import DATA_PATH

    return [m for m in texts_of(DATA_PATH)[5000:7000] if m.strip()]


@pytest.fixture(scope="module")
def reference(small_model_dir, messages) -> np.ndarray:
    from stocksent import SentimentModel

    return SentimentModel.load(small_model_dir, precision="float32").predict_proba(messages)


def test_arrow_table_record_batch_and_dataframe_get_the_models_probabilities(small_model_dir, messages, reference):
    scorer = BatchScorer(small_model_dir, batch_rows=700)  # other batches than predict_proba's: same numbers
    ids = list(range(len(messages)))
    table = pa.table({"id": ids, "message": messages})
    for data in (table, table.to_batches()[0]):
        out = scorer(data)
        assert type(out) is type(data)
        assert out.schema.names == ["id", "message", "p_bullish", "label"]
        assert out.schema.field("p_bullish").type == pa.float32()
        np.testing.assert_allclose(out.column("p_bullish").to_numpy(), reference, atol=1e-6, rtol=0)
        expected = [LABELS[int(p >= scorer.threshold)] for p in out.column("p_bullish").to_pylist()]
        assert out.column("label").to_pylist() == expected
    frame = scorer(pd.DataFrame({"id": ids, "message": messages}, index=np.arange(len(ids)) * 2))
    assert list(frame.columns) == ["id", "message", "p_bullish", "label"] and frame["p_bullish"].dtype == np.float32
    np.testing.assert_allclose(frame["p_bullish"].to_numpy(), reference, atol=1e-6, rtol=0)
    assert list(frame.index[:3]) == [0, 2, 4]


def test_null_messages_get_null_scores_and_old_score_columns_are_replaced(small_model_dir, messages, reference):
    scorer = BatchScorer(small_model_dir)
    table = pa.table({"body": [messages[0], None, messages[1]], "p_bullish": [9.0, 9.0, 9.0]})
    out = scorer(table)
    assert out.schema.names == ["body", "p_bullish", "label"]
    p = out.column("p_bullish").to_pylist()
    assert p[1] is None and out.column("label").to_pylist()[1] is None
    assert abs(p[0] - reference[0]) < 1e-6 and abs(p[2] - reference[1]) < 1e-6
    frame = scorer(pd.DataFrame({"message": [messages[0], None]}))
    assert np.isnan(frame["p_bullish"].iloc[1]) and frame["label"].iloc[1] is None


def test_pickles_small_and_loads_once_per_process(small_model_dir, messages, reference, monkeypatch):
    scorer = BatchScorer(small_model_dir)
    scorer.predict_proba(messages[:3])
    blob = pickle.dumps(scorer)
    assert len(blob) < 1000  # the path, not the model
    copy = pickle.loads(blob)
    assert "_model" not in copy.__dict__
    assert copy.model is scorer.model  # the process's cache: Spark's copies per task share one model
    np.testing.assert_allclose(copy.predict_proba(pa.array(messages)), reference, atol=1e-6, rtol=0)


def test_embedded_model_travels_without_the_directory(small_model_dir, messages, reference, tmp_path):
    import shutil

    moved = tmp_path / "m"
    shutil.copytree(small_model_dir, moved)
    scorer = BatchScorer(moved, embed=True)
    shutil.rmtree(moved)
    blob = pickle.dumps(scorer)
    assert not any("checkpoint" in name for name in scorer._files)
    np.testing.assert_allclose(pickle.loads(blob).predict_proba(messages[:50]), reference[:50], atol=1e-6, rtol=0)


def test_model_given_as_a_function_is_resolved_where_it_loads(small_model_dir, messages, reference):
    calls = []

    def where():
        calls.append(1)
        return small_model_dir

    scorer = BatchScorer(where)
    assert not calls
    np.testing.assert_allclose(scorer.predict_proba(messages[:10]), reference[:10], atol=1e-6, rtol=0)
    assert calls


def test_threads_come_from_omp_num_threads_else_usable_cores(small_model_dir, monkeypatch):
    import torch

    monkeypatch.setattr(scorer_module, "_MODELS", {})
    monkeypatch.setattr(scorer_module, "_THREADS_SET", False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    BatchScorer(small_model_dir).model  # noqa: B018
    assert torch.get_num_threads() == 1
    monkeypatch.setattr(scorer_module, "_MODELS", {})
    monkeypatch.setattr(scorer_module, "_THREADS_SET", False)
    monkeypatch.delenv("OMP_NUM_THREADS")
    BatchScorer(small_model_dir).model  # noqa: B018
    assert torch.get_num_threads() == scorer_module.usable_cores()


def test_user_errors_are_stocksent_errors(small_model_dir, tmp_path):
    with pytest.raises(StocksentError, match="not a model directory"):
        BatchScorer(tmp_path)
    scorer = BatchScorer(small_model_dir)
    with pytest.raises(StocksentError, match="pyarrow Table"):
        scorer([1, 2])
    with pytest.raises(StocksentError, match="no 'message', 'body' or 'text'"):
        scorer(pa.table({"tweet": ["a"]}))
    assert scorer.with_options(text_column="tweet")(pa.table({"tweet": ["a"]})).num_rows == 1
    with pytest.raises(StocksentError, match="not text"):
        scorer(pa.table({"message": [1, 2]}))
    with pytest.raises(StocksentError, match="with_options"):
        scorer.with_options(precision="bfloat16")
