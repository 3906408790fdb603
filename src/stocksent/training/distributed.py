"""Data-parallel training over processes (PyTorch's torch.distributed): joining a group, rank helpers,
the collectives a training step needs, and the launcher behind `train --nproc N`.

A run is one process (`World()`, every helper a no-op) or one rank of a group that a launcher started:
`torchrun`, `train --nproc N` (torch's elastic launcher, as torchrun runs it), Spark's
`TorchDistributor` and Ray Train's `TorchTrainer`. They all set RANK, WORLD_SIZE, LOCAL_RANK and
MASTER_ADDR/PORT (Ray also creates the process group itself), so `joined` reads only those and
assumes nothing about who started it.

Every rank computes its share of each batch (training/epochs.py), then the shares' gradients are
summed across ranks: dense ones in one flat all-reduce, sparse ones (the embedding rows a batch
touched) gathered in rank order, which is exactly the sum one process makes of its shards. So two
ranks train the same model as one process, and every rank holds the same weights after every step.
Only rank 0 writes (training/run.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from stocksent.errors import StocksentError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

TIMEOUT = dt.timedelta(hours=2)  # a collective waits this long for a slow rank before failing


@dataclass
class World:
    """This process's place in the group; the default is a run of one process.

    >>> World().is_main, World().size
    (True, 1)
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    group: Any = None  # the torch ProcessGroup for the collectives (None: the default group)
    comm_device: str = "cpu"  # where collective tensors live: "cpu" for gloo, "cuda:i" for NCCL

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value` (any picklable object) on every rank."""
        if self.size == 1:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=self._global(0), group=self.group, device=self.comm_device)
        return box[0]

    def first_error(self, message: str | None) -> str | None:
        """Each rank's error message (None: fine) -> the first rank's that failed, on every rank, so
        that all ranks stop together with one message instead of some waiting forever for the others."""
        if self.size == 1:
            return message
        import torch.distributed as dist

        messages: list[str | None] = [None] * self.size
        dist.all_gather_object(messages, message, group=self.group)
        for rank, text in enumerate(messages):
            if text is not None:
                return text if rank == 0 else f"rank {rank}: {text}"
        return None

    def from_main(self, compute: Callable[[], Any]) -> Any:
        """`compute()` on rank 0 only (it reads the run directory, which may be on rank 0's machine
        alone), its result on every rank; a `StocksentError` there is raised on every rank."""
        if self.size == 1:
            return compute()
        value, error = None, None
        if self.is_main:
            try:
                value = compute()
            except StocksentError as err:
                error = str(err)
        value, error = self.broadcast((value, error))
        if error is not None:
            raise StocksentError(error)
        return value

    def agreed(self, compute: Callable[[], Any]) -> Any:
        """`compute()` on every rank; a `StocksentError` on any rank is raised on all of them."""
        if self.size == 1:
            return compute()
        value, error = None, None
        try:
            value = compute()
        except StocksentError as err:
            error = str(err)
        error = self.first_error(error)
        if error is not None:
            raise StocksentError(error)
        return value

    @contextlib.contextmanager
    def main_context(self, manager: contextlib.AbstractContextManager) -> Iterator[None]:
        """`with manager:` on rank 0 only (the run directory's lock); its `StocksentError` on every rank."""
        with contextlib.ExitStack() as stack:
            self.from_main(lambda: stack.enter_context(manager) and None)
            yield

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sums over ranks (float64)."""
        if self.size == 1:
            return [float(v) for v in values]
        import torch
        import torch.distributed as dist

        total = torch.tensor(list(values), dtype=torch.float64, device=self.comm_device)
        dist.all_reduce(total, group=self.group)
        return total.cpu().tolist()

    def sum_gradients(
        self, params: list[torch.Tensor], grads: list[torch.Tensor | None], sparse: Sequence[bool]
    ) -> list[torch.Tensor]:
        """Every rank's gradients summed, on every rank. `grads` is None where this rank had no
        messages in the batch (the last one can be shorter than the number of ranks); `sparse` says
        which parameters have sparse gradients (embedding rows)."""
        import torch

        if self.size == 1:
            return [g if g is not None else torch.zeros_like(p) for p, g in zip(params, grads)]
        import torch.distributed as dist
        from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

        summed: list[torch.Tensor | None] = [None] * len(params)
        dense = [i for i in range(len(params)) if not sparse[i]]
        if dense:
            local = [grads[i] if grads[i] is not None else torch.zeros_like(params[i]) for i in dense]
            flat = _flatten_dense_tensors(local)
            dist.all_reduce(flat, group=self.group)
            for i, g in zip(dense, _unflatten_dense_tensors(flat, local)):
                summed[i] = g
        rows = [i for i in range(len(params)) if sparse[i]]
        if rows:
            for i, g in zip(rows, self._gather_sparse([params[i] for i in rows], [grads[i] for i in rows])):
                summed[i] = g
        return summed  # type: ignore[return-value]

    def _gather_sparse(self, params: list[torch.Tensor], grads: list[torch.Tensor | None]) -> list[torch.Tensor]:
        """Sparse gradients (rows of embedding tables) of all ranks laid end to end in rank order: the
        same tensor as one process's `a + b` of its shards, which SparseAdam coalesces alike."""
        import torch

        rows = [int(np.prod(p.shape[1:])) for p in params]
        nnz = [g._nnz() if g is not None else 0 for g in grads]
        counts = self._all_gather(torch.tensor(nnz, dtype=torch.int64, device=self.comm_device))
        counts = counts.cpu().view(self.size, len(params))
        index_len = counts.sum(1)
        value_len = (counts * torch.tensor(rows)).sum(1)
        indices = torch.cat([g._indices().reshape(-1) for g in grads if g is not None] or [torch.empty(0).long()])
        values = torch.cat(
            [g._values().reshape(-1) for g in grads if g is not None] or [torch.empty(0, dtype=params[0].dtype)]
        )
        all_indices = self._all_gather(_padded(indices.to(self.comm_device), int(index_len.max())))
        all_values = self._all_gather(_padded(values.to(self.comm_device), int(value_len.max())))
        all_indices = all_indices.view(self.size, -1)
        all_values = all_values.view(self.size, -1)
        out = []
        for j, p in enumerate(params):
            parts_i, parts_v = [], []
            for r in range(self.size):
                start = int(counts[r, :j].sum())
                vstart = int((counts[r, :j] * torch.tensor(rows[:j], dtype=torch.int64)).sum())
                n = int(counts[r, j])
                parts_i.append(all_indices[r, start : start + n])
                parts_v.append(all_values[r, vstart : vstart + n * rows[j]])
            out.append(
                torch.sparse_coo_tensor(
                    torch.cat(parts_i).view(1, -1).to(p.device),
                    torch.cat(parts_v).view(-1, *p.shape[1:]).to(p.device, p.dtype),
                    p.shape,
                    check_invariants=False,
                )
            )
        return out

    def _all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        import torch
        import torch.distributed as dist

        parts = [torch.empty_like(tensor) for _ in range(self.size)]
        dist.all_gather(parts, tensor, group=self.group)
        return torch.cat(parts)

    def gather_rows(self, compute: Callable[[Sequence], np.ndarray], items: Sequence) -> np.ndarray:
        """`compute` over `items` (a float32 value per item), each rank doing a contiguous share; the
        results of all ranks concatenated in order, on every rank."""
        if self.size == 1:
            return compute(items)
        import torch

        bounds = np.linspace(0, len(items), self.size + 1).astype(int)
        lo, hi = bounds[self.rank], bounds[self.rank + 1]
        mine = compute(items[lo:hi]).astype(np.float32) if hi > lo else np.zeros(0, np.float32)
        longest = int(np.diff(bounds).max())
        local = _padded(torch.from_numpy(mine).to(self.comm_device), longest)
        gathered = self._all_gather(local).cpu().numpy().reshape(self.size, longest)
        return np.concatenate([gathered[r, : bounds[r + 1] - bounds[r]] for r in range(self.size)])

    def broadcast_tensors(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Rank 0's named tensors on every rank (others pass {}): names and shapes first, then the data."""
        if self.size == 1:
            return tensors
        import torch
        import torch.distributed as dist

        layout = self.broadcast({k: (tuple(v.shape), v.dtype) for k, v in tensors.items()} if self.is_main else None)
        out = {}
        for name, (shape, dtype) in layout.items():
            t = tensors[name].to(self.comm_device) if self.is_main else torch.empty(shape, dtype=dtype)
            t = t.to(self.comm_device).contiguous()
            dist.broadcast(t, src=self._global(0), group=self.group)
            out[name] = t.cpu()
        return out

    def _global(self, rank: int) -> int:
        """The global rank of `rank` in this world's group (they differ in a subgroup only)."""
        if self.group is None:
            return rank
        import torch.distributed as dist

        return dist.get_global_rank(self.group, rank)


def _padded(tensor: torch.Tensor, length: int) -> torch.Tensor:
    import torch

    if len(tensor) == length:
        return tensor
    return torch.cat([tensor, torch.zeros(length - len(tensor), dtype=tensor.dtype, device=tensor.device)])


def share_training_state(world: World, model, optimizers: list, progress: dict) -> dict:
    """Rank 0's weights, optimizer state, torch RNG state and progress on every rank: a resumed run
    reads its checkpoint on rank 0 only, and a new one starts every rank from rank 0's weights."""
    if world.size == 1:
        return progress
    import torch

    from stocksent.training.checkpoint import optimizer_tensors, restore_optimizers

    tensors, plain = optimizer_tensors(optimizers) if world.is_main else ({}, None)
    if world.is_main:
        tensors.update({f"model.{k}": v for k, v in model.state_dict().items()})
        tensors["rng.torch"] = torch.get_rng_state()
    tensors = world.broadcast_tensors(tensors)
    plain, progress = world.broadcast((plain, progress))
    if not world.is_main:
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        restore_optimizers(optimizers, {k: v for k, v in tensors.items() if k.startswith("optim")}, plain)
        torch.set_rng_state(tensors["rng.torch"])
    return progress


def fingerprint(vocab_dict: dict, sizes: Sequence[int]) -> str:
    """What must be equal on every rank before training: the vocabulary and the split sizes."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps([vocab_dict, list(sizes)], sort_keys=True).encode()).hexdigest()


def check_same_data(world: World, print_: str) -> None:
    """Every rank read the same data and built the same vocabulary (each machine has its own copy)."""
    main = world.broadcast(print_)
    world.agreed(lambda: _same(main, print_))


def _same(main: str, mine: str) -> None:
    if main != mine:
        raise StocksentError(
            "this rank's data or vocabulary differs from rank 0's: give every machine the same --data files"
        )


def env_world() -> World:
    """The place a launcher gave this process in its environment; a one-process world without one."""
    values = {}
    for name, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0), ("LOCAL_WORLD_SIZE", None)):
        text = os.environ.get(name)
        if text is None:
            values[name] = default
            continue
        try:
            values[name] = int(text)
        except ValueError:
            raise StocksentError(f"environment variable {name}={text!r} must be a whole number") from None
    size = values["WORLD_SIZE"]
    if not (size >= 1 and 0 <= values["RANK"] < size):
        raise StocksentError(f"RANK={values['RANK']} WORLD_SIZE={size}: the rank must be from 0 to WORLD_SIZE - 1")
    local_size = values["LOCAL_WORLD_SIZE"] or size
    return World(values["RANK"], size, values["LOCAL_RANK"], local_size)


def launched() -> bool:
    """Whether this process is one of several that a launcher started (or whose group is up)."""
    import torch.distributed as dist

    return (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1) or env_world().size > 1


@contextlib.contextmanager
def joined(device_type: str) -> Iterator[World]:
    """This process's World for the duration: it joins the group its launcher set up (env://; gloo
    for the CPU, NCCL for CUDA), or uses the group that is already up (Ray Train creates it), or is
    alone. A group it created is destroyed on the way out, error or not; non-zero ranks log warnings only.
    """
    import torch
    import torch.distributed as dist

    world = env_world()
    created = False
    if dist.is_available() and dist.is_initialized():
        world.rank, world.size = dist.get_rank(), dist.get_world_size()
    elif world.size > 1:
        if device_type == "cuda":
            _check_gpus(world)
            torch.cuda.set_device(world.local_rank)
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend, init_method="env://", timeout=TIMEOUT)
        created = True
    if world.size == 1:
        yield world
        return
    backend = str(dist.get_backend()).lower()
    wanted = "nccl" if device_type == "cuda" else "gloo"
    subgroup = None
    if backend != wanted and not created:  # e.g. a CPU run inside a GPU (NCCL) Ray Train group
        if device_type == "cuda":
            _check_gpus(world)
            torch.cuda.set_device(world.local_rank)
        subgroup = world.group = dist.new_group(backend=wanted, timeout=TIMEOUT)
    world.comm_device = f"cuda:{torch.cuda.current_device()}" if wanted == "nccl" else "cpu"
    logger = logging.getLogger("stocksent")
    level = logger.level
    if not world.is_main:
        logger.setLevel(max(logging.WARNING, level))
    log.info(f"rank {world.rank} of {world.size} ({wanted})")
    try:
        yield world
    finally:
        logger.setLevel(level)
        if subgroup is not None:
            dist.destroy_process_group(subgroup)
        if created:
            dist.destroy_process_group()


def _check_gpus(world: World) -> None:
    import torch

    count = torch.cuda.device_count()
    if world.local_rank >= count:
        raise StocksentError(
            f"{world.local_size} training processes on this machine need {world.local_size} CUDA GPUs, one each "
            f"(NCCL); it has {count}: use --nproc {max(count, 1)} or --device cpu"
        )


def device_of(world: World, device: torch.device) -> torch.device:
    """A CUDA rank trains on its own GPU (cuda:LOCAL_RANK); the CPU is shared."""
    import torch

    if device.type == "cuda" and world.size > 1:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def threads_per_process(world: World) -> int:
    """This machine's cores shared out between its ranks (one OpenMP pool per process)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(world.local_size, 1))


def launch(entry: Callable[..., Any], args: tuple, nproc: int) -> dict[int, Any]:
    """`entry(*args)` in `nproc` processes on this machine, started by torch's elastic launcher as
    `torchrun --standalone --nproc-per-node nproc` starts them; returns each rank's return value.

    The children log as this process does (the "stocksent" logger's level, its lines on stderr where
    this process has a handler). A rank that fails stops the others; its error is raised here: a
    `StocksentError` (what a user can cause) as the one line it is, anything else with the rank's traceback.

    >>> launch(train_rank, (config.to_dict(),), nproc=2)[0]  # doctest: +SKIP
    """
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=uuid.uuid4().hex,
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",  # a free port on this machine, as torchrun --standalone
        max_restarts=0,
        monitor_interval=0.1,
        start_method="spawn",
    )
    logger = logging.getLogger("stocksent")
    logging_state = (logger.getEffectiveLevel(), bool(logger.handlers))
    # The launcher handles these signals itself (it stops the ranks); ours come back afterwards.
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        results = elastic_launch(config, _child)(entry, args, logging_state)
    except ChildFailedError as err:
        rank, failure = err.get_first_failure()
        message = failure.message.get("message", "") if isinstance(failure.message, dict) else failure.message
        first = str(message).strip().splitlines()[0] if str(message).strip() else "no message"
        raise StocksentError(f"training process rank {rank} failed ({first}); see its traceback above") from None
    except SignalException as err:  # Ctrl-C or a kill: the ranks are stopped; the signal is ours again
        _restore(handlers)
        signal.raise_signal(err.sigval)
        raise
    finally:
        _restore(handlers)
    refused = [results[rank] for rank in sorted(results) if isinstance(results[rank], RankError)]
    if refused:  # the ranks stop together on a user's error (World.agreed): one line, as one process gives
        raise StocksentError(refused[0].message)
    return results


@dataclass(frozen=True)
class RankError:
    """A rank's `StocksentError`, returned rather than raised: raised, the launcher would log each
    rank's traceback and wrap the line in its own report (py_callstack and all)."""

    message: str


def _restore(handlers: dict) -> None:
    for signum, handler in handlers.items():
        if handler is not None:
            signal.signal(signum, handler)


def _child(entry: Callable[..., Any], args: tuple, logging_state: tuple[int, bool]) -> Any:
    """A launched process: the parent's logging, then `entry`."""
    import sys

    level, has_handler = logging_state
    logger = logging.getLogger("stocksent")
    logger.setLevel(level)
    if has_handler and not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    try:
        return entry(*args)
    except KeyboardInterrupt:  # Ctrl-C reaches every rank; the launching process says "interrupted" once
        raise SystemExit(130) from None
    except StocksentError as err:  # a user's error: the launching process says it once (launch)
        return RankError(str(err))
