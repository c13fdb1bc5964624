"""The authors' checkpoint layout converts onto harma's modules: every tensor lands in the right place."""
from __future__ import annotations

import pytest
import torch

from harma.config import RunConfig, apply_overrides
from harma.model.build import WeightsError, build_clip, build_model, load_backbone_weights
from harma.model.original import load_original_checkpoint

TINY = {"model.arch": "tiny", "adapter.bottleneck": 16, "adapter.heads": 2, "adapter.bishare_width": 8}


def authors_state(depth=2, r=16, inner=8, seed=0):
    """A state dict in the authors' released layout, with distinct random tensors, built from its key names."""
    g = torch.Generator().manual_seed(seed)
    clip = build_clip("tiny", False)
    state = {f"model.{k}": torch.randn(v.shape, generator=g) for k, v in clip.state_dict().items()}
    state["temp"] = torch.tensor(0.05)
    for tower, width in (("visual.transformer", 64), ("transformer", 64)):
        for i in range(depth):
            p = f"model.{tower}.resblocks.{i}"
            state[f"{p}.gate1"] = torch.randn((), generator=g)
            shapes = {"img_proj_down.weight": (r, width), "img_proj_down.bias": (r,),
                      "img_proj_up.weight": (width, r), "img_proj_up.bias": (width,),
                      "multihead_attention.in_proj_weight": (3 * r, r), "multihead_attention.in_proj_bias": (3 * r,),
                      "multihead_attention.out_proj.weight": (r, r), "multihead_attention.out_proj.bias": (r,),
                      "gate1": ()}
            if tower == "transformer":
                shapes |= {f"BiShareAdapterxx.{k}": s for k, s in {
                    "l1.weight": (inner, r), "l1.bias": (inner,), "l2.weight": (r, inner), "l2.bias": (r,),
                    "multihead_attention1.in_proj_weight": (3 * inner, inner),
                    "multihead_attention1.in_proj_bias": (3 * inner,),
                    "multihead_attention1.out_proj.weight": (inner, inner),
                    "multihead_attention1.out_proj.bias": (inner,), "gate1": ()}.items()}
            for k, s in shapes.items():
                state[f"{p}.mmadapter.{k}"] = torch.randn(s, generator=g)
    return {"model": state, "epoch": 3}


def test_authors_checkpoint_round_trips_into_the_right_modules():
    model = build_model(apply_overrides(RunConfig(), TINY))
    ckpt = authors_state()
    report = load_original_checkpoint(model, ckpt)
    src = ckpt["model"]
    assert report.unmatched_checkpoint_keys == [] and report.missing_model_keys == []
    v = model.clip.visual.transformer.resblocks[1]
    t = model.clip.transformer.resblocks[0]
    assert torch.equal(v.mlp.gate1, src["model.visual.transformer.resblocks.1.gate1"])
    assert torch.equal(v.mlp.mmadapter.img_proj_down.weight,
                       src["model.visual.transformer.resblocks.1.mmadapter.img_proj_down.weight"])
    assert torch.equal(v.mlp.mlp.c_fc.weight, src["model.visual.transformer.resblocks.1.mlp.c_fc.weight"])
    assert torch.equal(t.mlp.mmadapter.bishare.multihead_attention1.in_proj_weight,
                       src["model.transformer.resblocks.0.mmadapter.BiShareAdapterxx.multihead_attention1.in_proj_weight"])
    assert torch.equal(t.mlp.mmadapter.bishare.gate1, src["model.transformer.resblocks.0.mmadapter.BiShareAdapterxx.gate1"])
    assert torch.equal(t.mlp.mmadapter.multihead_attention.out_proj.bias,
                       src["model.transformer.resblocks.0.mmadapter.multihead_attention.out_proj.bias"])
    assert torch.equal(model.clip.token_embedding.weight, src["model.token_embedding.weight"])
    assert float(model.temp.detach()) == pytest.approx(0.05)


def test_unmatched_keys_reported_and_shape_mismatch_fails():
    model = build_model(apply_overrides(RunConfig(), {**TINY, "adapter.share": "none"}))
    report = load_original_checkpoint(model, authors_state())
    assert any("BiShareAdapterxx" in k for k in report.unmatched_checkpoint_keys)
    wide = build_model(apply_overrides(RunConfig(), {**TINY, "adapter.bottleneck": 32}))
    with pytest.raises(WeightsError, match="shape mismatch"):
        load_original_checkpoint(wide, authors_state())


def test_backbone_weights_file_errors(tmp_path):
    cfg = apply_overrides(RunConfig(), {**TINY, "model.weights": str(tmp_path / "missing.pt")})
    with pytest.raises(WeightsError, match="not found"):
        build_model(cfg)
    clip = build_clip("tiny", False)
    state = clip.state_dict()
    state.pop("positional_embedding")
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError, match=r"missing keys \[positional_embedding\].*unexpected keys \[extra\.weight\]"):
        load_backbone_weights(build_clip("tiny", False), state, "f.pt")


def test_backbone_weights_load_from_file(tmp_path):
    torch.manual_seed(5)
    clip = build_clip("tiny", False)
    torch.save({"state_dict": {f"module.{k}": v for k, v in clip.state_dict().items()}}, tmp_path / "w.pt")
    model = build_model(apply_overrides(RunConfig(), {**TINY, "model.weights": str(tmp_path / "w.pt")}))
    assert torch.equal(model.clip.token_embedding.weight, clip.token_embedding.weight)
