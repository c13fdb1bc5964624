"""Model invariants: identity at init, batch-permutation equivariance, only adapters train, parameter counts,
share modes and injection errors."""
from __future__ import annotations

import copy

import pytest
import torch

from harma.config import RunConfig, apply_overrides
from harma.model.adapters import AdaptedMLP, BiShareAdapter, MMAdapter
from harma.model.build import HarmaModel, build_clip, build_model
from harma.model.freeze import parameter_report
from harma.model.inject import InjectionError, inject_adapters

TINY = {"model.arch": "tiny", "adapter.bottleneck": 16, "adapter.heads": 2, "adapter.bishare_width": 8}


def tiny(**extra) -> RunConfig:
    return apply_overrides(RunConfig(), {**TINY, **extra})


def inputs(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=g), torch.randint(1, 49000, (n, 77), generator=g)


def _nonzero_up(model):
    """Give every zero-initialised projection random values so the adapters really act."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, MMAdapter):
            m.img_proj_up.weight.data = torch.randn(m.img_proj_up.weight.shape, generator=g) * 0.1
        if isinstance(m, BiShareAdapter):
            m.l2.weight.data = torch.randn(m.l2.weight.shape, generator=g) * 0.1


@pytest.mark.parametrize("share", ["none", "text", "both"])
def test_injected_model_equals_base_at_init(share):
    torch.manual_seed(0)
    base = build_clip("tiny", False).eval()
    injected = copy.deepcopy(base)
    inject_adapters(injected, tiny(**{"adapter.share": share}).adapter)
    injected.eval()
    images, tokens = inputs()
    with torch.no_grad():
        torch.testing.assert_close(injected.encode_image(images), base.encode_image(images), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(injected.encode_text(tokens), base.encode_text(tokens), rtol=1e-5, atol=1e-5)


def test_adapters_change_output_once_up_is_nonzero():
    torch.manual_seed(0)
    base = build_clip("tiny", False).eval()
    injected = copy.deepcopy(base)
    inject_adapters(injected, tiny().adapter)
    _nonzero_up(injected)
    images, _ = inputs()
    with torch.no_grad():
        assert not torch.allclose(injected.encode_image(images), base.encode_image(images), atol=1e-4)


def test_batch_permutation_permutes_outputs():
    torch.manual_seed(0)
    model = build_model(tiny(**{"adapter.share": "both"})).eval()
    _nonzero_up(model)
    images, tokens = inputs(5)
    perm = torch.tensor([3, 0, 4, 1, 2])
    with torch.no_grad():
        img, txt, _ = model(images, tokens)
        img_p, txt_p, _ = model(images[perm], tokens[perm])
    torch.testing.assert_close(img_p, img[perm], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(txt_p, txt[perm], rtol=1e-5, atol=1e-5)


def test_encoders_return_unit_norm():
    model = build_model(tiny()).eval()
    images, tokens = inputs()
    with torch.no_grad():
        assert torch.allclose(model.encode_image(images).norm(dim=-1), torch.ones(3), atol=1e-5)
        assert torch.allclose(model.encode_text(tokens).norm(dim=-1), torch.ones(3), atol=1e-5)


def _is_adapter_param(name: str) -> bool:
    return ".mmadapter." in name or name.endswith(".mlp.gate1") or name == "temp"


def test_only_adapter_gate_and_temperature_tensors_change_after_three_steps():
    from harma.losses import contrastive_loss, weighted_triplet_loss
    from harma.train_step import make_optimizer

    torch.manual_seed(0)
    cfg = tiny(**{"adapter.share": "both", "optim.lr": 1e-2})
    model = build_model(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params_before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = make_optimizer(model, cfg, torch.device("cpu"))            # the trainer's groups: adapter_params()
    for step in range(3):
        images, tokens = inputs(4, seed=step)
        img, txt, temp = model(images, tokens)
        loss = contrastive_loss(img, txt, temp) + weighted_triplet_loss(img, txt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed, "nothing trained"
    assert all(_is_adapter_param(k) for k in changed), sorted(k for k in changed if not _is_adapter_param(k))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(_is_adapter_param(n) for n in trainable)
    assert "clip.logit_scale" not in trainable
    moved = {n for n, p in model.named_parameters() if not torch.equal(params_before[n], p)}
    assert moved == trainable == set(model.adapter_params())         # what trains, all of it, nothing else


@pytest.mark.parametrize("towers", ["both", "vision", "text", "none"])
@pytest.mark.parametrize("w_contr", [0.0, 1.0])
def test_adapter_params_decide_what_trains(towers, w_contr):
    from harma.config import adapts, planned_epochs, trains_temperature

    cfg = tiny(**{"adapter.towers": towers, "loss.w_contr": w_contr, "loss.w_triplet": 1.0, "train.epochs": 5})
    model = build_model(cfg)
    params = model.adapter_params()
    names = list(params)
    assert names == [n for n, p in model.named_parameters() if p.requires_grad]       # frozen by it, in order
    assert all(params[n] is p for n, p in model.named_parameters() if n in params)
    assert ("temp" in params) == trains_temperature(cfg) == (towers != "none" and w_contr > 0)
    expected = {"both": {"visual", "transformer"}, "vision": {"visual"}, "text": {"transformer"}, "none": set()}
    assert {n.split(".")[1] for n in names if n != "temp"} == expected[towers]
    assert bool(params) == adapts(cfg) and planned_epochs(cfg) == (5 if towers != "none" else 1)
    report = parameter_report(model)
    parts = sum(n for name, (_, n) in report.items() if name not in ("trainable total", "all parameters"))
    assert parts == report["trainable total"][1] == sum(p.numel() for p in params.values())
    assert ("temperature" in report) == ("temp" in params)


def test_vit_b32_default_trainable_count_and_components():
    model = build_model(RunConfig())
    report = parameter_report(model)
    assert report["trainable total"][1] == 5_934_397
    assert sum(p.numel() for p in model.adapter_params().values()) == 5_934_397
    assert report["MMadapter (vision)"] == (12, 12 * 263_553)
    assert report["MMadapter (text)"] == (12, 12 * 197_761)
    assert report["BiShareAdapter"] == (12, 12 * 33_217)
    assert report["block gates"] == (24, 24)
    assert report["temperature"] == (1, 1)
    mha = model.clip.visual.transformer.resblocks[0].mlp.mmadapter.multihead_attention
    assert sum(p.numel() for p in mha.parameters()) == 66_048
    bishare = model.clip.transformer.resblocks[0].mlp.mmadapter.bishare
    assert sum(p.numel() for p in bishare.multihead_attention1.parameters()) == 16_640
    assert abs(report["all parameters"][1] / 1e6 - 157.2) < 0.1


def test_share_modes():
    both = build_model(tiny(**{"adapter.share": "both"}))
    text = build_model(tiny(**{"adapter.share": "text"}))
    none = build_model(tiny(**{"adapter.share": "none"}))
    for i in range(2):
        v = both.clip.visual.transformer.resblocks[i].mlp.mmadapter
        t = both.clip.transformer.resblocks[i].mlp.mmadapter
        assert v.bishare is t.bishare and v.bishare is not None
        assert text.clip.visual.transformer.resblocks[i].mlp.mmadapter.bishare is None
        assert isinstance(text.clip.transformer.resblocks[i].mlp.mmadapter.bishare, BiShareAdapter)
    assert both.clip.transformer.resblocks[0].mlp.mmadapter.bishare is not \
        both.clip.transformer.resblocks[1].mlp.mmadapter.bishare
    assert not any(isinstance(m, BiShareAdapter) for m in none.modules())


def test_towers_and_block_gate_modes():
    vision_only = build_model(tiny(**{"adapter.towers": "vision"}))
    assert isinstance(vision_only.clip.visual.transformer.resblocks[0].mlp, AdaptedMLP)
    assert not isinstance(vision_only.clip.transformer.resblocks[0].mlp, AdaptedMLP)
    frozen = build_model(tiny(**{"adapter.towers": "none"}))
    assert not any(isinstance(m, (MMAdapter, AdaptedMLP)) for m in frozen.modules())
    open_gate = build_model(tiny(**{"adapter.block_gate": "open"}))
    block = open_gate.clip.visual.transformer.resblocks[0].mlp
    assert block.gate1 is None
    x = torch.randn(2, 5, 64)
    torch.testing.assert_close(block(x), block.mmadapter(block.mlp(x)))


def test_block_gate_formula():
    model = build_model(tiny())
    _nonzero_up(model)
    block = model.clip.visual.transformer.resblocks[0].mlp
    x = torch.randn(2, 5, 64)
    z = block.mlp(x)
    g = 1 / (1 + torch.exp(torch.tensor(-0.6)))
    assert abs(float(g) - 0.6457) < 1e-4
    torch.testing.assert_close(block(x), g * block.mmadapter(z) + (1 - g) * z)


def test_mmadapter_against_written_out_reference():
    torch.manual_seed(0)
    bishare = BiShareAdapter(16, 8, 2)
    adapter = MMAdapter(24, 16, 2, bishare=bishare)
    for lin in (adapter.img_proj_up, bishare.l2):
        torch.nn.init.normal_(lin.weight)
    z = torch.randn(3, 5, 24)
    u = torch.nn.functional.gelu(z @ adapter.img_proj_down.weight.T + adapter.img_proj_down.bias)

    def mha(m, x):  # per-sample self-attention written out, heads split by hand
        n, length, width = x.shape
        heads = m.num_heads
        q, k, v = (x @ m.in_proj_weight.T + m.in_proj_bias).split(width, dim=-1)
        split = lambda t: t.view(n, length, heads, width // heads).transpose(1, 2)
        att = torch.softmax(split(q) @ split(k).transpose(-1, -2) / (width // heads) ** 0.5, dim=-1)
        out = (att @ split(v)).transpose(1, 2).reshape(n, length, width)
        return out @ m.out_proj.weight.T + m.out_proj.bias

    a = mha(adapter.multihead_attention, u)
    vv = a @ bishare.l1.weight.T + bishare.l1.bias
    s2 = torch.sigmoid(bishare.gate1)
    a = a + (s2 * mha(bishare.multihead_attention1, vv) + (1 - s2) * vv) @ bishare.l2.weight.T + bishare.l2.bias
    a = mha(adapter.multihead_attention, a)
    s = torch.sigmoid(adapter.gate1)
    expected = z + (s * u + (1 - s) * a) @ adapter.img_proj_up.weight.T + adapter.img_proj_up.bias
    torch.testing.assert_close(adapter(z), expected, rtol=1e-4, atol=1e-5)


def test_injecting_twice_fails_loudly():
    clip = build_clip("tiny", False)
    inject_adapters(clip, tiny().adapter)
    with pytest.raises(InjectionError, match="already injected"):
        inject_adapters(clip, tiny().adapter)


def test_harma_model_is_the_public_api():
    import harma

    model = harma.build_model(tiny())
    assert isinstance(model, HarmaModel)
