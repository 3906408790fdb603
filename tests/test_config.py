"""Every training option is checked in one place (TrainConfig.validate / ModelConfig.from_dict),
whatever door it comes in by: a flag, a --config file, the Python API, a saved checkpoint."""

from __future__ import annotations

import json

import pytest

from stocksent import ModelConfig, StocksentError, TrainConfig, preset
from stocksent.cli import main
from stocksent.config import OPTION_RULES, load_config_file

BAD_VALUES = [
    ("epochs", 0),
    ("epochs", "ten"),
    ("epochs", 2.5),
    ("epochs", True),
    ("batch_size", -1),
    ("lr", float("inf")),
    ("lr", float("nan")),
    ("lr", 0),
    ("lr", "0.1"),
    ("lr_decay", 1.5),
    ("word_dropout", 1.0),
    ("optimizer", "sgd"),
    ("loss", None),
    ("embed_size", 10**9),
    ("lstm_sizes", (0, 4)),
    ("lstm_sizes", "abc"),
    ("lstm_sizes", ()),
    ("keep_prob", 0),
    ("seed", -1),
    ("patience", 0),
    ("max_examples", 5),
    ("device", "tpu"),
    ("resume", "yes"),
    ("min_count", 0),
    ("max_tokens", -3),
    ("ngram_buckets", -1),
    ("ngram_lr", float("-inf")),
    ("linear_blend", 1),
    ("split_seed", -2),
    ("num_threads", 0),
    ("data", ""),
    ("data", 7),
]


@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
def test_python_api_refuses_each_bad_value_naming_the_option(name, value) -> None:
    with pytest.raises(StocksentError, match="--" + name.replace("_", "-")):
        preset("default", **{name: value}) if value is not None else TrainConfig(**{name: value}).validate()


def test_every_option_has_a_rule_and_the_presets_pass_them() -> None:
    import dataclasses

    assert {f.name for f in dataclasses.fields(TrainConfig)} - {"lstm_sizes"} == set(OPTION_RULES)
    for name in ("default", "tutorial"):
        preset(name).validate()


@pytest.mark.parametrize(
    ("name", "value"),
    [("epochs", "ten"), ("lr", 1e999), ("lstm_sizes", [64, -1]), ("keep_prob", True), ("max_tokens", 0.5)],
)
def test_config_file_values_of_the_wrong_type_or_range_are_one_line_errors(tmp_path, capsys, name, value) -> None:
    path = tmp_path / "options.json"
    path.write_text(json.dumps({"train": {name: value}}).replace("Infinity", "1e999"))
    code = main(["train", "--config", str(path), "--out", str(tmp_path / "never")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("stocksent: error: --" + name.replace("_", "-"))
    assert not (tmp_path / "never").exists()


def test_config_file_that_is_not_options(tmp_path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    with pytest.raises(StocksentError, match="nested too deeply"):
        load_config_file(str(deep))
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(StocksentError, match="JSON object"):
        load_config_file(str(listed))
    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"epochz": 3}')
    with pytest.raises(StocksentError, match="unknown training option.*epochz"):
        load_config_file(str(unknown))


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--seed", "-1"],
        ["train", "--lr", "inf"],
        ["train", "--embed-size", "1e9"],
        ["train", "--lstm-sizes", "0,3"],
        ["baseline", "--out", "x", "--seed", "-1"],
        ["bench", "--threads", "-1"],
        ["serve", "--model", "m", "--port", "70000"],
        ["predict"],
        ["nonsense"],
    ],
)
def test_bad_flags_are_one_error_line_and_exit_2(capsys, argv) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and err[0].startswith("stocksent: error: ")


def test_model_config_checks_what_a_model_directory_may_claim() -> None:
    assert ModelConfig.from_dict({"vocab_size": 10, "lstm_sizes": [4, 2]}).lstm_sizes == (4, 2)
    for bad in [
        {"vocab_size": -1},
        {"vocab_size": 10, "embed_size": 1e9},
        {"vocab_size": 10, "keep_prob": "x"},
        {"vocab_size": 10, "lstm_sizes": []},
        {"embed_size": 3},
        {"vocab_size": 10, "extra": 1},
        [1],
    ]:
        with pytest.raises(StocksentError):
            ModelConfig.from_dict(bad)
