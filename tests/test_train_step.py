"""The speed options of a training step compute what the plain step computes: the on-device loss sums and NaN
guard against hand-made losses, the one-GEMM attention layout against the unhooked module (exact values and
gradients, no batched matmul left), and the optimizer / precision switches by what they pass on (compilation:
tests/test_compiled.py)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from harma.model.layout import seq_first_self_attention
from harma.runtime import precision_context
from harma.train_step import NonFiniteError, StepTotals, make_optimizer, param_groups


def parts(loss: float, contr: float) -> dict[str, torch.Tensor]:
    return {"contr": torch.tensor(contr), "loss": torch.tensor(loss)}


def test_step_totals_average_every_part():
    totals = StepTotals(epoch=1, device=torch.device("cpu"))
    for step, (loss, contr) in enumerate([(1.0, 0.5), (2.0, 1.5), (4.5, 1.0)]):
        totals.add(step, parts(loss, contr))
    totals.check()
    assert totals.steps == 3
    assert totals.means() == pytest.approx({"loss": 7.5 / 3, "loss_contr": 1.0})


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_step_totals_name_the_first_non_finite_step(bad):
    totals = StepTotals(epoch=4, device=torch.device("cpu"))
    for step, loss in enumerate([1.0, 2.0, bad, float("nan"), 3.0]):
        totals.add(step, parts(loss, 0.25))
    with pytest.raises(NonFiniteError, match=rf"epoch 4 step 2: loss is {bad}") as err:
        totals.check()
    assert "'contr': 0.25" in str(err.value)


def test_step_totals_check_reads_nothing_bad_when_all_finite():
    totals = StepTotals(epoch=1, device=torch.device("cpu"))
    totals.check()                        # no steps yet
    assert totals.means() == {}


def batch_first_mha(seed: int = 0) -> nn.MultiheadAttention:
    """A frozen batch-first attention, as in open_clip's blocks below an adapter."""
    torch.manual_seed(seed)
    return nn.MultiheadAttention(16, 2, batch_first=True).requires_grad_(False)


def bmm_calls(fn) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return sum(e.count for e in prof.key_averages() if e.key == "aten::bmm")


def test_seq_first_layout_keeps_values_and_gradients_and_drops_the_batched_matmul():
    plain, hooked = batch_first_mha(), batch_first_mha()
    wrapper = nn.Sequential(hooked)
    assert seq_first_self_attention(wrapper) == 1
    x = torch.randn(4, 7, 16, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)

    def run(module, inp):
        out = module(inp, inp, inp, need_weights=False)[0]
        out.square().sum().backward()
        return out

    out_plain, out_hooked = run(plain, x), run(hooked, x2)
    assert torch.equal(out_plain, out_hooked) or torch.allclose(out_plain, out_hooked, atol=1e-6, rtol=0)
    torch.testing.assert_close(x.grad, x2.grad)
    x3 = x.detach().clone().requires_grad_(True)
    assert bmm_calls(lambda: run(plain, x3)) > 0
    assert bmm_calls(lambda: run(hooked, x3)) == 0
    trainable = batch_first_mha().requires_grad_(True)
    seq_first_self_attention(trainable)
    assert bmm_calls(lambda: run(trainable, x3)) == 0        # folds by itself; the hook stays out of the way


def test_seq_first_layout_leaves_state_dict_keys_and_no_grad_calls_alone():
    mha = batch_first_mha()
    keys = list(mha.state_dict())
    seq_first_self_attention(mha)
    assert list(mha.state_dict()) == keys
    x = torch.randn(2, 3, 16)
    with torch.no_grad():
        torch.testing.assert_close(mha(x, x, x)[0], batch_first_mha()(x, x, x)[0])


class _Adapted(nn.Module):
    """A model whose `adapter_params()` is its Linear's weight and bias, and whose frozen part stays out."""

    def __init__(self):
        super().__init__()
        self.frozen, self.adapter = nn.Linear(2, 2), nn.Linear(2, 3)

    def adapter_params(self) -> dict[str, nn.Parameter]:
        return {"adapter.weight": self.adapter.weight, "adapter.bias": self.adapter.bias}


def test_parameter_groups_decay_every_trained_tensor_but_biases():
    gate, weight, bias = (nn.Parameter(torch.zeros(s)) for s in ((), (2, 2), (2,)))
    groups = param_groups({"mlp.gate1": gate, "x.l1.weight": weight, "x.l1.bias": bias}, 0.04)
    assert [[id(p) for p in g["params"]] for g in groups] == [[id(gate), id(weight)], [id(bias)]]
    assert [g["weight_decay"] for g in groups] == [0.04, 0.0]


def test_optimizer_is_fused_on_cuda_only_and_holds_only_adapter_params(monkeypatch):
    from harma.config import RunConfig

    seen = {}

    class Recorder:
        def __init__(self, groups, **kwargs):
            seen.update(kwargs, params=[id(p) for g in groups for p in g["params"]])

    monkeypatch.setattr(torch.optim, "AdamW", Recorder)
    model = _Adapted()
    make_optimizer(model, RunConfig(), torch.device("cuda", 0))
    assert seen["params"] == [id(model.adapter.weight), id(model.adapter.bias)]
    assert seen["fused"] is True
    make_optimizer(model, RunConfig(), torch.device("cpu"))
    assert seen["fused"] is None
    assert seen["lr"] == RunConfig().optim.lr and seen["betas"] == (0.9, 0.98)


def test_bf16_precision_autocasts_on_cpu_and_fp32_does_not():
    lin = nn.Linear(4, 4)
    x = torch.randn(2, 4)
    with precision_context(torch.device("cpu"), "bf16"):
        assert lin(x).dtype == torch.bfloat16
    with precision_context(torch.device("cpu"), "fp32"):
        assert lin(x).dtype == torch.float32


def test_bf16_training_on_cpu_trains(tiny_cfg):
    from harma.config import apply_overrides
    from harma.train import train

    summary = train(apply_overrides(tiny_cfg, {"train.precision": "bf16", "train.epochs": 1}))
    assert summary.epochs_run == 1 and math.isfinite(summary.best_val["r_mean"])
    assert summary.history[0].train["loss"] > 0


def test_layout_hook_changes_no_bit_of_a_tiny_harma_step():
    """Embeddings, loss and every adapter gradient of the built model equal those of the same model built
    without the hook (build_model's steps written out), bit for bit on CPU."""
    from harma.config import RunConfig, apply_overrides
    from harma.losses import harma_loss
    from harma.model.build import HarmaModel, build_clip, build_model
    from harma.model.freeze import freeze_all_but_adapters
    from harma.model.inject import inject_adapters

    cfg = apply_overrides(RunConfig(), {"model.arch": "tiny", "adapter.bottleneck": 16, "adapter.heads": 2,
                                        "adapter.bishare_width": 8})
    torch.manual_seed(0)
    hooked = build_model(cfg)
    torch.manual_seed(0)
    with torch.random.fork_rng(devices=[]):    # the backbone's init from train.seed, the global state untouched
        torch.manual_seed(cfg.train.seed)
        clip = build_clip("tiny", False)
    inject_adapters(clip, cfg.adapter)
    plain = HarmaModel(clip, cfg.loss.temp_init)
    freeze_all_but_adapters(plain)
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    tokens = torch.randint(1, 400, (4, 77), generator=torch.Generator().manual_seed(1))
    ids = torch.tensor([0, 0, 1, 2])
    results = []
    for model in (hooked, plain):
        for name, p in model.named_parameters():   # non-zero `up` projections, so adapters matter
            if "img_proj_up" in name or ".l2." in name:
                nn.init.normal_(p, std=0.05, generator=torch.Generator().manual_seed(2))
        img, txt, temp = model(images, tokens)
        loss = harma_loss(img, txt, temp, ids, None, cfg.loss)["loss"]
        loss.backward()
        results.append((img, txt, loss, [p.grad for p in model.parameters() if p.requires_grad]))
    (i1, t1, l1, g1), (i2, t2, l2, g2) = results
    assert torch.equal(i1, i2) and torch.equal(t1, t2) and torch.equal(l1, l2)
    assert len(g1) == len(g2) and all(torch.equal(a, b) for a, b in zip(g1, g2))
