"""The model directory: weights as safetensors, everything else as JSON, all written atomically.

Loading never unpickles, so a model directory from anywhere cannot run code, and it checks all it
reads (every tensor's name, dtype, shape and finiteness; the threshold, temperature and text options
of config.json; the vocabulary's words), so a damaged or tampered directory is refused with one line
naming the file and the field rather than giving wrong answers. `load_model_dir` reads each file
once and can be held to known sha256 digests (`serve --workers N` pins them for every worker).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
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
from stocksent.version import __version__
from stocksent.vocab import Vocabulary

WEIGHTS, CONFIG, VOCAB, METRICS, CURVE = (
    "model.safetensors",
    "config.json",
    "vocab.json",
    "metrics.json",
    "learning_curve.png",
)
MODEL_FILES = (WEIGHTS, CONFIG, VOCAB)  # what a model is loaded from, and what `sha256` pins
MAX_TOKENS = 100_000  # as training's --max-tokens allows


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    write_bytes(path, save_safetensors_bytes(contiguous))


def load_tensors(path: Path, data: bytes | None = None) -> dict[str, torch.Tensor]:
    """The tensors in a safetensors file (or in `data`, that file's bytes already read)."""
    try:
        return load_safetensors_bytes(path.read_bytes() if data is None else data)
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise StocksentError(f"{path} is corrupted or not a safetensors file ({err})") from None


def read_json(path: Path, data: bytes | None = None) -> Any:
    """A JSON file's value (or that of `data`, the file's bytes already read); one line if it is not JSON."""
    try:
        return json.loads(path.read_bytes() if data is None else data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise StocksentError(f"{path} is corrupted: not valid JSON ({err})") from None
    except RecursionError:
        raise StocksentError(f"{path} is corrupted: JSON nested too deeply") from None


def sha256_files(directory: str | Path, names: tuple[str, ...] = MODEL_FILES) -> dict[str, str]:
    """{file name: sha256 hex digest} of a model directory's files, as `load_model_dir(sha256=...)` checks.

    >>> sha256_files("runs/demo")[WEIGHTS][:12]  # doctest: +SKIP
    '3f2a9c0e71b4'
    """
    return {name: hashlib.sha256((Path(directory) / name).read_bytes()).hexdigest() for name in names}


def model_id(directory: str | Path, weights_sha256: str | None = None) -> str:
    """`NAME-SHA12`: the directory's name and the first 12 hex digits of its weights' sha256 (the digest
    loading recorded, else read here). Two models with one id have the same weights.

    >>> model_id("runs/demo", "5ec0808720fc" + "0" * 52)
    'demo-5ec0808720fc'
    """
    digest = weights_sha256 or sha256_files(directory, (WEIGHTS,))[WEIGHTS]
    return f"{Path(os.path.abspath(directory)).name}-{digest[:12]}"


def _read_model_files(directory: Path, sha256: Mapping[str, str] | None) -> dict[str, bytes]:
    """Each file's bytes, read once, so what is checked (and pinned) is exactly what is loaded."""
    files = {}
    for name in MODEL_FILES:
        try:
            files[name] = (directory / name).read_bytes()
        except OSError as err:
            raise StocksentError(f"cannot read {directory / name}: {err.strerror or err}") from None
    for name, expected in (sha256 or {}).items():
        actual = hashlib.sha256(files[name]).hexdigest()
        if actual != expected:
            raise StocksentError(
                f"{directory / name} changed since the server started (sha256 {actual[:12]}, pinned "
                f"{expected[:12]}): refusing to serve a second model; restart the server to serve the new one"
            )
    return files


def save_weights(directory: Path, model: LSTMClassifier) -> None:
    save_tensors(directory / WEIGHTS, model.state_dict())


def save_model_dir(directory: Path, model: LSTMClassifier, config: dict, vocab: Vocabulary) -> None:
    """Weights, config (with the network's shape) and vocabulary; metrics.json is written by training."""
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / VOCAB, vocab.to_dict())
    write_json(directory / CONFIG, {**config, "model": model.config.to_dict()})
    save_weights(directory, model)


def load_model_dir(
    directory: str | Path, sha256: Mapping[str, str] | None = None
) -> tuple[LSTMClassifier, dict, Vocabulary]:
    """Model (eval mode, CPU), its config and vocabulary; a clear error for any missing or bad file.

    `sha256` ({file name: digest}, as `sha256_files` gives) refuses files that differ from those digests.
    """
    model, config, vocab, _ = load_model_files(directory, sha256)
    return model, config, vocab


def load_model_files(
    directory: str | Path, sha256: Mapping[str, str] | None = None
) -> tuple[LSTMClassifier, dict, Vocabulary, dict[str, str]]:
    """As `load_model_dir`, plus the sha256 of the very bytes it loaded ({file name: digest})."""
    directory = Path(directory)
    if not directory.is_dir():
        raise StocksentError(f"model directory not found: {directory} (train one with: stocksent train --out DIR)")
    for name in MODEL_FILES:
        if not (directory / name).is_file():
            raise StocksentError(
                f"model directory {directory} is missing {name}; train again or copy the whole directory"
            )
    files = _read_model_files(directory, sha256)
    config = read_json(directory / CONFIG, files[CONFIG])
    if not isinstance(config, dict):
        raise StocksentError(f"{directory / CONFIG} is invalid: not a JSON object")
    check_model_config(config, str(directory / CONFIG))
    try:
        vocab = _vocabulary(read_json(directory / VOCAB, files[VOCAB]))
    except (KeyError, TypeError, ValueError) as err:
        raise StocksentError(f"{directory / VOCAB} is invalid ({err})") from None
    if "model" not in config:
        raise StocksentError(f"{directory / CONFIG} is invalid: it has no model field (the network's sizes)")
    try:
        sizes = ModelConfig.from_dict(config["model"])
    except StocksentError as err:
        raise StocksentError(f"{directory / CONFIG} is invalid: model: {err}") from None
    if len(vocab) != sizes.vocab_size:  # checked before the network (its embedding) is allocated
        raise StocksentError(
            f"model directory {directory}: vocab.json has {len(vocab)} words but the model expects {sizes.vocab_size}"
        )
    model = LSTMClassifier.from_config(sizes)
    tensors = load_tensors(directory / WEIGHTS, files[WEIGHTS])
    check_tensors(tensors, model.state_dict(), directory / WEIGHTS)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise StocksentError(f"{directory / WEIGHTS} does not match config.json ({first})") from None
    return model.eval(), config, vocab, {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


def _vocabulary(data: Any) -> Vocabulary:
    if not isinstance(data, dict) or not isinstance(data.get("words"), list):
        raise ValueError("it must be a JSON object with a list of words")
    bad = next((i for i, w in enumerate(data["words"]) if not isinstance(w, str)), None)
    if bad is not None:
        raise ValueError(f"words[{bad}] is not a string")
    return Vocabulary.from_dict(data)


PADDING_ROWS = ("embedding.weight", "ngrams.weight")  # row 0 is <pad>: never a word


def check_tensors(tensors: Mapping[str, Any], expected: Mapping[str, torch.Tensor], path: Path | str) -> None:
    """Every tensor the network needs, none it does not, each floating point, of its shape and finite.

    load_state_dict alone would cast integer weights to float and take NaN or infinite ones as they
    are: a model that loads and answers wrongly, or NaN, for every message.
    """
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        parts = ([f"missing {', '.join(missing[:3])}"] if missing else []) + (
            [f"unexpected {', '.join(unexpected[:3])}"] if unexpected else []
        )
        raise StocksentError(f"{path} does not match config.json ({'; '.join(parts)})")
    for name, want in expected.items():
        tensor = tensors[name]
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            kind = getattr(tensor, "dtype", type(tensor).__name__)
            raise StocksentError(f"{path}: tensor {name} is {kind}, not floating point: the file is damaged")
        if tuple(tensor.shape) != tuple(want.shape):
            raise StocksentError(
                f"{path} does not match config.json (tensor {name} has shape {list(tensor.shape)}, "
                f"the network needs {list(want.shape)})"
            )
        # NaN propagates through aminmax: ~8x quicker than isfinite(tensor).all() (0.1 s a model)
        if tensor.numel() and not all(math.isfinite(v) for v in torch.aminmax(tensor)):
            raise StocksentError(
                f"{path}: tensor {name} holds NaN or infinite values: the file is damaged; train again"
            )
        if name in PADDING_ROWS and bool(tensor[0].any()):
            # Training keeps it zero (padding_idx); ONNX sums padded positions, torch skips them.
            raise StocksentError(f"{path}: tensor {name} has a non-zero padding row 0: the file is damaged")


def check_model_config(config: Mapping[str, Any], where: str = "the model's config") -> None:
    """The scoring fields of config.json: threshold (finite, 0 to 1), temperature (finite, > 0) and
    the text options (keep_emoji and keep_cashtags booleans, max_tokens a positive whole number).

    A NaN threshold would label every message bearish; a negative max_tokens would crash later.
    The stocksent that wrote it must not be newer than this one (check_format_version).
    """
    check_format_version(config, where)

    def bad(field: str, expected: str, value: Any) -> StocksentError:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        return StocksentError(f"{where} is invalid: {field} must be {expected}; got {shown}")

    threshold = config.get("threshold", 0.5)
    if not (_is_real(threshold) and 0.0 <= threshold <= 1.0):
        raise bad("threshold", "a finite number from 0 to 1", threshold)
    temperature = config.get("temperature", 1.0)
    if temperature is not None and not (_is_real(temperature) and temperature > 0):
        raise bad("temperature", "a finite number above 0", temperature)
    text = config.get("text", {})
    if not isinstance(text, dict):
        raise bad("text", "an object of text options", text)
    for name in ("keep_emoji", "keep_cashtags"):
        if name in text and not isinstance(text[name], bool):
            raise bad(f"text.{name}", "true or false", text[name])
    max_tokens = text.get("max_tokens", 100)
    if not (isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and 1 <= max_tokens <= MAX_TOKENS):
        raise bad("text.max_tokens", f"a whole number from 1 to {MAX_TOKENS:,}", max_tokens)


_VERSION = re.compile(r"(\d+)\.(\d+)(?:[.+\-a-z0-9]*)")


def check_format_version(config: Mapping[str, Any], where: str = "the model's config") -> None:
    """The rule for config.json's `stocksent_version` (the stocksent that wrote the directory): a
    version newer than this stocksent in its first two parts (major.minor) is refused, as its format
    may hold what this one would misread; this or an older one (a patch release never changes the
    format) is read, and so is a directory without the field (written before it was recorded: read
    as the oldest format, 0.1). Anything else there (null, a number, an object) is refused.

    >>> check_format_version({"stocksent_version": "99.0.0"})  # doctest: +SKIP
    StocksentError: the model's config was written by stocksent 99.0.0, newer than this stocksent ...
    """
    if "stocksent_version" not in config:
        return
    written = config["stocksent_version"]
    match = _VERSION.fullmatch(written.strip().lower()) if isinstance(written, str) else None
    if match is None:
        shown = repr(written) if len(repr(written)) <= 40 else repr(written)[:37] + "..."
        raise StocksentError(
            f"{where} is invalid: stocksent_version must be a version such as {__version__!r}; got {shown}"
        )
    mine = _VERSION.match(__version__)
    if (int(match[1]), int(match[2])) > (int(mine[1]), int(mine[2])):
        raise StocksentError(
            f"{where} was written by stocksent {written}, newer than this stocksent {__version__}: "
            "upgrade stocksent (pip install --upgrade stocksent) to load it"
        )


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
