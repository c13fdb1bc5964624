"""No host read inside a training step: N steps of the trainer's loop (harma.train_step.forward_loss, backward,
the optimizer and scheduler, as harma.train._train_epoch runs them) on the tiny CLIP read nothing from a tensor
on the host except the NaN guard's one read every `train.finite_check_every` steps, for each loss mix, in one
process and in DDP over 2 gloo processes.

Counted: Python-level `.item()`, `.tolist()`, `.numpy()`, `bool()`, `float()`, `int()`, `__index__` of a tensor
and `torch.unique`, and at the dispatcher every scalar read (`aten._local_scalar_dense`, which C++ code reaches
too) and every op whose output size depends on the data (`unique`, `nonzero`, `masked_select`).  The optimizer is
the one the trainer builds on CUDA (fused AdamW; the unfused CPU one reads its step count with `.item()`).
"""
from __future__ import annotations

import contextlib
import os
import pickle
import traceback
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils._python_dispatch import TorchDispatchMode

from harma.config import RunConfig, apply_overrides, load_config

STEPS, CHECK_EVERY = 6, 3
MIXES = {"contrastive": {"loss.w_triplet": 0.0},
         "contrastive+triplet": {"loss.w_triplet": 1.0},
         "contrastive+triplet+affiliation": {"loss.w_triplet": 1.0, "loss.w_affil": 0.5}}
PY_READS = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__")
DATA_SIZED_OPS = ("_local_scalar_dense", "_unique", "_unique2", "unique_dim", "unique_consecutive", "nonzero",
                  "masked_select")
HERE = Path(__file__).resolve().parent.parent


def _site() -> str:
    """`file:function` of the innermost frame in harma/ or tests/ (where the read was asked for)."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        if frame.filename.startswith(str(HERE)) and not frame.filename.endswith(__file__.rsplit("/", 1)[-1]):
            return f"{Path(frame.filename).name}:{frame.name}"
    return "<no harma frame>"


class _OpReads(TorchDispatchMode):
    def __init__(self, seen: list):
        super().__init__()
        self.seen = seen

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in DATA_SIZED_OPS:
            self.seen.append((f"aten.{func.overloadpacket.__name__}", _site()))
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def counting_reads(seen: list):
    """Record (what, where) for every host read while inside."""
    originals = {name: getattr(torch.Tensor, name) for name in PY_READS}
    unique = torch.unique

    def wrap(name, real):
        def read(self, *args, **kwargs):
            seen.append((f"Tensor.{name}", _site()))
            return real(self, *args, **kwargs)
        return read

    try:
        for name, real in originals.items():
            setattr(torch.Tensor, name, wrap(name, real))
        torch.unique = lambda *a, **k: (seen.append(("torch.unique", _site())), unique(*a, **k))[1]
        with _OpReads(seen):
            yield
    finally:
        for name, real in originals.items():
            setattr(torch.Tensor, name, real)
        torch.unique = unique


def _config(mix: str) -> RunConfig:
    return apply_overrides(load_config("synthetic-tiny"), {
        **MIXES[mix], "train.finite_check_every": CHECK_EVERY, "train.batch_size": 8, "train.device": "cpu"})


def _batches(cfg: RunConfig, rank: int, world: int) -> list[tuple[torch.Tensor, ...]]:
    """STEPS full batches (this rank's slice of each global batch): images, tokens, image ids, scene labels."""
    from harma.model.build import tokenizer_for

    gen = torch.Generator().manual_seed(0)
    n, size = cfg.train.batch_size * world, cfg.data.image_size
    mine = slice(rank * cfg.train.batch_size, (rank + 1) * cfg.train.batch_size)
    tokens = tokenizer_for(cfg)([f"a {w} near a river" for w in ("port", "school", "bridge", "farm")] * (n // 4))
    out = []
    for _ in range(STEPS):
        images, ids = torch.randn(n, 3, size, size, generator=gen), torch.arange(n) // 2
        labels = torch.randint(0, 3, (n,), generator=gen)
        out.append((images[mine], tokens[mine], ids[mine], labels[mine]))
    return out


def train_steps(cfg: RunConfig, forward, model, batches, seen: list) -> float:
    """The loop of harma.train._train_epoch (reads counted inside); the mean loss."""
    from harma.train_epochs import lr_lambda
    from harma.train_step import StepTotals, forward_loss, make_optimizer

    device = torch.device("cpu")
    optimizer = make_optimizer(model, cfg, torch.device("cuda"))   # the CUDA optimizer: fused AdamW
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(STEPS, cfg.optim.warmup, "linear"))
    totals = StepTotals(1, device)
    model.train()
    with counting_reads(seen):
        for step, (images, tokens, image_ids, labels) in enumerate(batches):
            images, tokens = images.to(device, non_blocking=True), tokens.to(device, non_blocking=True)
            ids, labels = image_ids.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            parts = forward_loss(forward, images, tokens, ids, labels, cfg, device)
            totals.add(step, parts)
            optimizer.zero_grad(set_to_none=True)
            parts["loss"].backward()
            optimizer.step()
            scheduler.step()
            if (step + 1) % CHECK_EVERY == 0:
                totals.check()
    return totals.means()["loss"]


def _model(cfg: RunConfig):
    from harma.model.build import build_model

    torch.manual_seed(0)
    return build_model(cfg)


def assert_only_the_guard_reads(seen: list) -> None:
    guard = [s for s in seen if s[1] == "train_step.py:check"]
    others = [s for s in seen if s[1] != "train_step.py:check"]
    assert others == [], f"host reads inside the step: {others}"
    # each check is one int() of the first bad step, a scalar read at the dispatcher
    assert guard.count(("Tensor.__int__", "train_step.py:check")) == STEPS // CHECK_EVERY, guard
    assert guard.count(("aten._local_scalar_dense", "train_step.py:check")) == STEPS // CHECK_EVERY, guard


@pytest.mark.parametrize("mix", list(MIXES))
def test_one_process_steps_read_nothing_but_the_guard(mix):
    cfg = _config(mix)
    model, seen = _model(cfg), []
    loss = train_steps(cfg, model, model, _batches(cfg, 0, 1), seen)
    assert loss == loss  # finite mean (read after the counted loop)
    assert_only_the_guard_reads(seen)


def test_the_counter_sees_a_read():
    seen = []
    with counting_reads(seen):
        torch.ones(3).sum().item()
        torch.unique(torch.tensor([1, 1, 2]))
    whats = [what for what, _ in seen]
    assert "Tensor.item" in whats and "aten._local_scalar_dense" in whats and "torch.unique" in whats


def _ddp_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    results = {}
    for mix in MIXES:
        cfg = _config(mix)
        model, seen = _model(cfg), []
        forward = torch.nn.parallel.DistributedDataParallel(model)
        loss = train_steps(cfg, forward, model, _batches(cfg, rank, world), seen)
        results[mix] = {"seen": seen, "loss": loss}
    with open(os.path.join(out_dir, f"rank{rank}.pkl"), "wb") as fh:
        pickle.dump(results, fh)
    dist.barrier()
    dist.destroy_process_group()


def test_ddp_two_gloo_processes_read_nothing_but_the_guard(tmp_path):
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        with open(tmp_path / f"rank{rank}.pkl", "rb") as fh:
            results = pickle.load(fh)
        assert set(results) == set(MIXES)
        for mix, got in results.items():
            assert got["loss"] == got["loss"], mix
            assert_only_the_guard_reads(got["seen"])
