"""The model directory: weights as safetensors, everything else as JSON, all written atomically.

Loading never unpickles, so a model directory from anywhere cannot run code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from stocksent.atomic import write_bytes, write_json
from stocksent.config import ModelConfig
from stocksent.errors import StocksentError
from stocksent.model import LSTMClassifier
from stocksent.vocab import Vocabulary

WEIGHTS, CONFIG, VOCAB, METRICS, CURVE = (
    "model.safetensors",
    "config.json",
    "vocab.json",
    "metrics.json",
    "learning_curve.png",
)


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    write_bytes(path, save_safetensors_bytes(contiguous))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_safetensors_bytes(path.read_bytes())
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise StocksentError(f"{path} is corrupted or not a safetensors file ({err})") from None


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise StocksentError(f"{path} is corrupted: not valid JSON ({err})") from None


def save_weights(directory: Path, model: LSTMClassifier) -> None:
    save_tensors(directory / WEIGHTS, model.state_dict())


def save_model_dir(directory: Path, model: LSTMClassifier, config: dict, vocab: Vocabulary) -> None:
    """Weights, config (with the network's shape) and vocabulary; metrics.json is written by training."""
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / VOCAB, vocab.to_dict())
    write_json(directory / CONFIG, {**config, "model": model.config.to_dict()})
    save_weights(directory, model)


def load_model_dir(directory: str | Path) -> tuple[LSTMClassifier, dict, Vocabulary]:
    """Model (eval mode, CPU), its config and vocabulary; a clear error for any missing or bad file."""
    directory = Path(directory)
    if not directory.is_dir():
        raise StocksentError(f"model directory not found: {directory} (train one with: stocksent train --out DIR)")
    for name in (WEIGHTS, CONFIG, VOCAB):
        if not (directory / name).is_file():
            raise StocksentError(
                f"model directory {directory} is missing {name}; train again or copy the whole directory"
            )
    config = read_json(directory / CONFIG)
    try:
        vocab = Vocabulary.from_dict(read_json(directory / VOCAB))
        model = LSTMClassifier.from_config(ModelConfig.from_dict(config["model"]))
    except (KeyError, TypeError, ValueError) as err:
        raise StocksentError(f"model directory {directory} has an invalid config.json or vocab.json ({err})") from None
    if len(vocab) != model.embedding.num_embeddings:
        raise StocksentError(
            f"model directory {directory}: vocab.json has {len(vocab)} words but the model expects "
            f"{model.embedding.num_embeddings}"
        )
    try:
        model.load_state_dict(load_tensors(directory / WEIGHTS))
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise StocksentError(f"{directory / WEIGHTS} does not match config.json ({first})") from None
    return model.eval(), config, vocab
