"""Two gloo processes: the gathered loss and the DDP-averaged gradients equal one process on the whole batch,
with equal batches (the training step's static gather) and with uneven ones (`gather_uneven_with_grad`)."""
from __future__ import annotations

import os
import pickle

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from harma.config import LossConfig
from harma.distributed import gather_no_grad, gather_uneven_with_grad, gather_with_grad
from harma.losses import harma_loss

CFG = LossConfig(w_contr=1.0, w_triplet=1.0, w_affil=0.5)


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 6, generator=g)
    y = torch.randn(8, 5, generator=g)
    ids = torch.tensor([0, 0, 1, 2, 3, 3, 4, 5])
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])
    return x, y, ids, labels


class Towers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.img = torch.nn.Linear(6, 4)
        self.txt = torch.nn.Linear(5, 4)
        self.temp = torch.nn.Parameter(torch.tensor(0.07))

    def forward(self, x, y):
        return (torch.nn.functional.normalize(self.img(x), dim=-1),
                torch.nn.functional.normalize(self.txt(y), dim=-1), self.temp)


def _loss(model, x, y, ids, labels, gather=gather_with_grad):
    img, txt, temp = model(x, y)
    img, txt = gather(img), gather(txt)
    if gather is gather_uneven_with_grad:   # ids and labels travel with the embeddings, same sizes
        ids, labels = gather(ids[:, None].float())[:, 0].long(), gather(labels[:, None].float())[:, 0].long()
    else:
        ids, labels = gather_no_grad(ids), gather_no_grad(labels)
    return harma_loss(img, txt, temp, ids, labels, CFG)["loss"]


def _worker(rank: int, world: int, init_file: str, out_dir: str, cut: int = 4) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    x, y, ids, labels = _data()
    part = slice(0, cut) if rank == 0 else slice(cut, 8)
    model = torch.nn.parallel.DistributedDataParallel(Towers())
    gather = gather_with_grad if cut == 4 else gather_uneven_with_grad
    loss = _loss(model, x[part], y[part], ids[part], labels[part], gather)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.module.named_parameters()}
    with open(os.path.join(out_dir, f"rank{rank}.pkl"), "wb") as fh:
        pickle.dump({"loss": float(loss.detach()), "grads": grads}, fh)
    dist.barrier()  # neither rank tears the group down while the other still uses it
    dist.destroy_process_group()


@pytest.mark.parametrize("cut", [4, 3], ids=["equal-batches", "uneven-batches"])
def test_two_process_gloo_loss_and_gradients_equal_one_process(tmp_path, cut):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path), cut), nprocs=2, join=True)
    single = Towers()
    loss = _loss(single, *_data())
    loss.backward()
    for rank in range(2):
        with open(tmp_path / f"rank{rank}.pkl", "rb") as fh:
            got = pickle.load(fh)
        assert abs(got["loss"] - float(loss.detach())) < 1e-5
        for name, p in single.named_parameters():
            torch.testing.assert_close(got["grads"][name], p.grad, rtol=1e-4, atol=1e-6, msg=name)
