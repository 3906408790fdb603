"""`TrainConfig`: every training option in one place, and the named presets the CLI starts from."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from stocksent.errors import StocksentError
from stocksent.text import TextOptions


@dataclass(frozen=True)
class ModelConfig:
    """The network's sizes: what `config.json`'s "model" holds and what a model is rebuilt from.

    >>> ModelConfig(vocab_size=5000).lstm_sizes
    (128, 64)
    """

    vocab_size: int
    embed_size: int = 300
    lstm_sizes: tuple[int, ...] = (128, 64)
    keep_prob: float = 0.5
    ngram_buckets: int = 0

    def validate(self) -> None:
        """Sizes a model directory (or a caller) may give; a clear error instead of a crash later."""
        checks = [
            (
                _is_int(self.vocab_size) and 2 <= self.vocab_size <= MAX_VOCAB,
                f"vocab_size must be an integer from 2 to {MAX_VOCAB}",
            ),
            (
                _is_int(self.embed_size) and 1 <= self.embed_size <= MAX_WIDTH,
                f"embed_size must be an integer from 1 to {MAX_WIDTH}",
            ),
            (
                isinstance(self.lstm_sizes, tuple)
                and 1 <= len(self.lstm_sizes) <= 8
                and all(_is_int(s) and 1 <= s <= MAX_WIDTH for s in self.lstm_sizes),
                f"lstm_sizes must be 1 to 8 integers from 1 to {MAX_WIDTH}, e.g. 128,64",
            ),
            (_is_number(self.keep_prob) and 0 < self.keep_prob <= 1, "keep_prob must be a number in (0, 1]"),
            (
                _is_int(self.ngram_buckets) and 0 <= self.ngram_buckets <= MAX_BUCKETS,
                f"ngram_buckets must be an integer from 0 (off) to {MAX_BUCKETS}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise StocksentError(message)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "lstm_sizes": list(self.lstm_sizes)}

    @classmethod
    def from_dict(cls, data: Any) -> ModelConfig:
        """Checked: unknown keys, wrong types and out-of-range sizes raise `StocksentError`."""
        if not isinstance(data, dict):
            raise StocksentError("the model's sizes must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise StocksentError(f"unknown model option(s): {', '.join(map(str, unknown))}")
        if "vocab_size" not in data:
            raise StocksentError("the model's sizes lack vocab_size")
        values = dict(data)
        if isinstance(values.get("lstm_sizes"), list):
            values["lstm_sizes"] = tuple(values["lstm_sizes"])
        config = cls(**values)
        config.validate()
        return config


MAX_WIDTH = 8192  # embedding and LSTM widths: far above any useful size, far below an out-of-memory crash
MAX_BUCKETS = 2**26
MAX_VOCAB = 2**24  # words; a larger number in a model's config.json is damage, not a vocabulary


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    import math

    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class TrainConfig:
    """Defaults are the `default` preset; `PRESETS` overrides them by name."""

    data: str | list[str] | None = None  # files, directories, globs; None: $STOCKSENT_DATA, the cache, or the download
    out: str | None = None  # None: runs/<timestamp>
    preset: str = "default"
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.002
    lr_decay: float = 0.8  # the learning rate is multiplied by this after every epoch
    word_dropout: float = 0.25  # fraction of training words replaced by <unk>
    optimizer: str = "adam"  # adam | adadelta
    loss: str = "bce"  # bce | mse
    embed_size: int = 300
    lstm_sizes: tuple[int, ...] = (128, 64)
    keep_prob: float = 0.5
    seed: int = 1
    patience: int | None = 3  # epochs without a better validation accuracy; None: never stop early
    max_examples: int | None = None  # use only the first N usable rows (quick experiments)
    device: str = "auto"  # auto | cpu | cuda
    resume: bool = False
    min_count: int = 2  # a word seen fewer times in training maps to <unk>
    keep_emoji: bool = True
    keep_cashtags: bool = True
    max_tokens: int = 100
    ngram_buckets: int = 2**20  # hashed word pairs of the linear n-gram term; 0: the LSTM alone
    ngram_lr: float = 0.03  # Adam's learning rate for the n-gram weights
    linear_blend: bool = True  # blend a logistic regression into the n-gram term (blend.py); needs ngram_buckets
    split_seed: int | None = None  # None: same as seed
    num_threads: int | None = None  # None: torch's choice (with nproc > 1: this machine's cores shared out)
    nproc: int = 1  # training processes on this machine (data-parallel ranks: training/distributed.py)
    split: str = "random"  # random (seeded 80/10/10) | time (oldest 80% train, newest 10% test)
    init_from: str | None = None  # a model directory to continue from (its weights, text options, vocabulary)

    @property
    def text_options(self) -> TextOptions:
        return TextOptions(keep_emoji=self.keep_emoji, keep_cashtags=self.keep_cashtags, max_tokens=self.max_tokens)

    @property
    def effective_split_seed(self) -> int:
        return self.seed if self.split_seed is None else self.split_seed

    def validate(self) -> None:
        """Every option's type and range, whatever door it came in by (flag, --config file, Python API,
        a model's config.json on resume): a bad value is one clear error here, never a crash later."""
        for name in ("data", "out", "init_from"):  # a pathlib.Path is as good as a string
            if isinstance(getattr(self, name), os.PathLike):
                setattr(self, name, os.fspath(getattr(self, name)))
        if isinstance(self.data, (list, tuple)):
            self.data = [os.fspath(d) if isinstance(d, os.PathLike) else d for d in self.data]
        for name, rule in OPTION_RULES.items():
            check_option(name, getattr(self, name), *rule)
        if isinstance(self.lstm_sizes, list):
            self.lstm_sizes = tuple(self.lstm_sizes)
        if not (
            isinstance(self.lstm_sizes, tuple)
            and 1 <= len(self.lstm_sizes) <= 8
            and all(_is_int(v) and 1 <= v <= MAX_WIDTH for v in self.lstm_sizes)
        ):
            raise StocksentError(
                f"--lstm-sizes must be 1 to 8 integers from 1 to {MAX_WIDTH}, e.g. 128,64; got {self.lstm_sizes!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["lstm_sizes"] = list(self.lstm_sizes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise StocksentError(f"unknown training option(s): {', '.join(unknown)}")
        values = dict(data)
        if isinstance(values.get("lstm_sizes"), list):
            values["lstm_sizes"] = tuple(values["lstm_sizes"])
        return cls(**values)


# name: (kind, low, high, choices). kind "int"/"float" are inclusive ranges (floats must be finite);
# "bool", "choice", "path" (a string or None); `None` in a rule's last slot allows the value None.
OPTION_RULES: dict[str, tuple] = {
    "data": ("paths", None, None, None),
    "out": ("path", None, None, None),
    "preset": ("text", None, None, None),
    "epochs": ("int", 1, 100_000, ()),
    "batch_size": ("int", 1, 1_000_000, ()),
    "lr": ("float", 1e-12, 1e3, ()),
    "lr_decay": ("float", 1e-6, 1.0, ()),
    "word_dropout": ("float", 0.0, 0.99, ()),
    "optimizer": ("choice", None, None, ("adam", "adadelta")),
    "loss": ("choice", None, None, ("bce", "mse")),
    "embed_size": ("int", 1, MAX_WIDTH, ()),
    "keep_prob": ("float", 1e-6, 1.0, ()),
    "seed": ("int", 0, 2**63 - 1, ()),
    "patience": ("int", 1, 100_000, None),
    "max_examples": ("int", 10, 2**63 - 1, None),
    "device": ("choice", None, None, ("auto", "cpu", "cuda")),
    "resume": ("bool", None, None, ()),
    "min_count": ("int", 1, 2**31, ()),
    "keep_emoji": ("bool", None, None, ()),
    "keep_cashtags": ("bool", None, None, ()),
    "max_tokens": ("int", 1, 100_000, ()),
    "ngram_buckets": ("int", 0, MAX_BUCKETS, ()),
    "ngram_lr": ("float", 1e-12, 1e3, ()),
    "linear_blend": ("bool", None, None, ()),
    "split_seed": ("int", 0, 2**63 - 1, None),
    "num_threads": ("int", 1, 4096, None),
    "nproc": ("int", 1, 1024, ()),
    "split": ("choice", None, None, ("random", "time")),
    "init_from": ("path", None, None, None),
}


def check_option(name: str, value: Any, kind: str, low: Any, high: Any, choices: tuple | None) -> None:
    """One training option against its rule; the message names the flag and the value given."""
    flag = "--" + name.replace("_", "-")
    if value is None:
        if choices is None or kind in ("path", "paths", "text"):
            return
        raise StocksentError(f"{flag} must be given (got null)")
    if kind in ("path", "text"):
        ok = isinstance(value, str) and "\0" not in value and value.strip() != ""
        expected = "a non-empty string"
    elif kind == "paths":  # one path, or a non-empty list of them
        items = value if isinstance(value, list) else [value]
        ok = bool(items) and all(isinstance(v, str) and "\0" not in v and v.strip() != "" for v in items)
        expected = "a path or a non-empty list of paths"
    elif kind == "bool":
        ok, expected = isinstance(value, bool), "true or false"
    elif kind == "choice":
        ok, expected = value in choices and isinstance(value, str), " or ".join(choices)
    elif kind == "int":
        ok = _is_int(value) and low <= value <= high
        expected = f"a whole number from {low:,} to {high:,}"
    else:
        ok = _is_number(value) and low <= value <= high
        expected = f"a finite number from {low:g} to {high:g}"
    if not ok:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise StocksentError(f"{flag} must be {expected}; got {shown}")


PRESETS: dict[str, dict[str, Any]] = {
    # The tutorial's exact recipe (its flaws fixed elsewhere: vocabulary, padding, state, last batch).
    "tutorial": dict(
        epochs=50,
        batch_size=256,
        lr=0.1,
        lr_decay=1.0,
        word_dropout=0.0,
        optimizer="adadelta",
        loss="mse",
        embed_size=300,
        lstm_sizes=(128, 64),
        keep_prob=0.5,
        patience=None,
        min_count=1,
        keep_emoji=False,
        keep_cashtags=False,
        ngram_buckets=0,
        linear_blend=False,
    ),
    "default": {},
}


def preset(name: str, **overrides: Any) -> TrainConfig:
    """A preset's config with explicit overrides on top (None overrides are ignored)."""
    if name not in PRESETS:
        raise StocksentError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    values = {**PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}}
    config = TrainConfig(preset=name, **values)
    config.validate()
    return config


def config_from_sources(
    preset_name: str | None, config_file: str | None, overrides: dict[str, Any], resume: bool = False
) -> TrainConfig:
    """The run's options as the CLI gathers them: a preset, then a `--config` file, then flags.

    `resume=True` marks the run as a continuation; `training` then checks the options against the
    ones the run started with (re-running the original command with `--resume` added is allowed).
    """
    base = load_config_file(config_file) if config_file else {}
    name = base.pop("preset", None) if config_file else None
    name = preset_name or name or "default"
    values = {**base, **{k: v for k, v in overrides.items() if v is not None}}
    return preset(name, **values, resume=resume or None)


def load_config_file(path: str) -> dict[str, Any]:
    """Training options from a JSON file (as `tune` writes); validated by `preset` afterwards."""
    import json
    from pathlib import Path

    file = Path(path)
    if not file.is_file():
        raise StocksentError(f"no such config file: {path}")
    if file.stat().st_size > 1_000_000:
        raise StocksentError(f"{path} is over 1 MB: not a file of training options")
    try:
        values = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise StocksentError(f"{path} is not valid JSON ({err})") from None
    except RecursionError:
        raise StocksentError(f"{path} is nested too deeply to be a file of training options") from None
    if isinstance(values, dict) and "train" in values:  # a model's config.json or a tune preset
        values = values["train"]
    if not isinstance(values, dict):
        raise StocksentError(f"{path} must hold a JSON object of training options")
    parsed = TrainConfig.from_dict(values)  # rejects unknown names early; values are checked with the preset's
    # The file's options as TrainConfig holds them (lists of sizes as tuples); where to read, write
    # and whether to resume come from the command line only.
    return {key: getattr(parsed, key) for key in values if key not in ("data", "out", "resume")}
