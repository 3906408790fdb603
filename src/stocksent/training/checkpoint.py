"""Checkpoints: model, optimizers and RNG as safetensors, progress and options as JSON (no pickle).

A checkpoint is written before epoch 1 and after every epoch, so `--resume` continues any run that
got past its start, and ends bit-identical to an uninterrupted one on the CPU.
"""

from __future__ import annotations

from pathlib import Path

import torch

from stocksent.artifacts import load_tensors, read_json, save_tensors
from stocksent.atomic import write_json
from stocksent.config import TrainConfig
from stocksent.errors import StocksentError
from stocksent.training.rundir import CHECKPOINT_STATE, CHECKPOINT_WEIGHTS

# Options that may differ on resume: where things are and how fast they run, not what is trained.
RESUME_FREE = {"data", "out", "device", "num_threads", "nproc", "resume"}


def optimizer_tensors(optimizers: list[torch.optim.Optimizer]) -> tuple[dict, list]:
    """Split optimizer state into tensors (safetensors) and plain values (JSON)."""
    tensors, plain = {}, []
    for k, opt in enumerate(optimizers):
        state = opt.state_dict()
        scalars = {}
        for pid, values in state["state"].items():
            for name, value in values.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim{k}.{pid}.{name}"] = value
                else:
                    scalars.setdefault(str(pid), {})[name] = value
        plain.append({"param_groups": state["param_groups"], "state_ids": list(state["state"]), "scalars": scalars})
    return tensors, plain


def restore_optimizers(optimizers: list[torch.optim.Optimizer], tensors: dict, plain: list) -> None:
    for k, (opt, saved) in enumerate(zip(optimizers, plain)):
        state = {pid: dict(saved["scalars"].get(str(pid), {})) for pid in saved["state_ids"]}
        for key, value in tensors.items():
            prefix, pid, name = key.split(".", 2)
            if prefix == f"optim{k}":
                state[int(pid)][name] = value
        opt.load_state_dict({"state": state, "param_groups": saved["param_groups"]})


def save_checkpoint(out: Path, model, optimizers, progress: dict, run: dict) -> None:
    """`run` is the run's manifest (options, data record): what `--resume` checks and continues with."""
    tensors, plain = optimizer_tensors(optimizers)
    tensors.update({f"model.{k}": v for k, v in model.state_dict().items()})
    tensors["rng.torch"] = torch.get_rng_state()
    save_tensors(out / CHECKPOINT_WEIGHTS, tensors)
    write_json(out / CHECKPOINT_STATE, {**progress, "optimizers": plain, "run": run})


def load_checkpoint(out: Path, model, optimizers) -> dict:
    tensors = load_tensors(out / CHECKPOINT_WEIGHTS)
    progress = read_json(out / CHECKPOINT_STATE)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    restore_optimizers(
        optimizers, {k: v for k, v in tensors.items() if k.startswith("optim")}, progress.pop("optimizers")
    )
    torch.set_rng_state(tensors["rng.torch"])
    progress.pop("run", None)
    return progress


def saved_run(out: Path) -> dict:
    """The manifest an interrupted run recorded in its checkpoint."""
    state = read_json(out / CHECKPOINT_STATE)
    if not isinstance(state, dict) or not isinstance(state.get("run"), dict):
        raise StocksentError(f"{out / CHECKPOINT_STATE} is not a stocksent checkpoint; delete {out} and start again")
    return state["run"]


def resume_config(out: Path, config: TrainConfig) -> TrainConfig:
    """The options the run started with, so a resumed run ends where the first run would.

    Re-running the original command with `--resume` added is the normal way to resume, so options
    equal to the saved ones are fine; any that differ are refused, each named with both values.
    """
    saved = TrainConfig.from_dict(saved_run(out)["train"])
    saved.validate()  # a checkpoint edited by hand gets the same checks as a flag
    given, recorded = config.to_dict(), saved.to_dict()
    differ = [name for name in recorded if name not in RESUME_FREE and given[name] != recorded[name]]
    if differ:
        listed = "; ".join(
            f"--{name.replace('_', '-')} {given[name]!r} (the run started with {recorded[name]!r})" for name in differ
        )
        raise StocksentError(f"--resume continues the run with its own options; these differ: {listed}")
    saved.resume, saved.out, saved.device, saved.num_threads = True, str(out), config.device, config.num_threads
    saved.nproc = config.nproc
    if config.data is not None:
        saved.data = config.data
    return saved
