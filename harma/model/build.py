"""Build the HarMA model: an open_clip CLIP from its arch config, local backbone weights, injected adapters.

No hub access ever: `model.weights` is a local file (an open_clip / OpenAI-layout state dict, or GeoRSCLIP's
`RS5M_ViT-B-32_RET-2.pt`), loaded with `weights_only=True` before the adapters are injected; a process that runs
one trial after another keeps the last frozen backbone (harma.model.cache).  `HarmaModel`
holds the CLIP and the learnable contrastive temperature and returns L2-normalised embeddings.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import open_clip
import torch
import torch.nn.functional as F
from torch import nn

from harma.errors import WeightsError
from harma.config import RunConfig, trains_temperature
from harma.model.adapters import adapter_parameters
from harma.model.cache import backbone_key, cached_backbone
from harma.model.freeze import freeze_all_but_adapters
from harma.model.inject import inject_adapters
from harma.model.layout import seq_first_self_attention
from harma.model.weights import resolve_weights

# A test-sized CLIP (random init only): 2 blocks per tower, 32-pixel images, full BPE vocabulary.  The vision
# tower average-pools its patch tokens: at random init a class-token readout gives every image nearly the same
# embedding (mean cosine ~0.8 on the synthetic set, against ~0.05 pooled), which leaves adapters nothing to learn.
TINY_ARCH: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32,
                   "pool_type": "avg"},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


class HarmaModel(nn.Module):
    """A CLIP with injected adapters and a learnable temperature; encoders return unit-norm embeddings.
    `adapter_params()` is the one answer to what trains (freezing, optimizer, checkpoints, counts ask it)."""

    def __init__(self, clip: nn.Module, temp_init: float = 0.07, temp_min: float | None = None,
                 train_temperature: bool = True):
        super().__init__()
        self.clip = clip
        self.temp = nn.Parameter(torch.tensor(float(temp_init)))
        self.temp_min = temp_min
        self.train_temperature = train_temperature

    def adapter_params(self) -> dict[str, nn.Parameter]:
        """{name: parameter} of exactly what trains: every adapter's parameters, the block gates, and the
        temperature unless the config froze it; named and ordered as `named_parameters()` gives them."""
        trained = {id(p) for p in adapter_parameters(self.clip)}
        if self.train_temperature:
            trained.add(id(self.temp))
        return {name: p for name, p in self.named_parameters() if id(p) in trained}

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.clip.encode_image(images), dim=-1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.clip.encode_text(tokens), dim=-1)

    def temperature(self) -> torch.Tensor:
        return self.temp if self.temp_min is None else self.temp.clamp(min=self.temp_min)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor):
        """(image embeddings, text embeddings, temperature); the temperature is an output so DDP sees it used."""
        return self.encode_image(images), self.encode_text(tokens), self.temperature()


def arch_config(arch: str) -> dict[str, Any]:
    if arch == "tiny":
        return {k: dict(v) if isinstance(v, dict) else v for k, v in TINY_ARCH.items()}
    cfg = open_clip.get_model_config(arch)
    if cfg is None:
        raise WeightsError(f"model.arch: unknown open_clip arch {arch!r}; e.g. ViT-B-32, ViT-B-16, ViT-L-14, tiny")
    if "timm_model_name" in cfg.get("vision_cfg", {}) or "hf_model_name" in cfg.get("text_cfg", {}):
        raise WeightsError(f"model.arch: {arch!r} is not a plain ViT CLIP (timm/HF tower); harma injects into "
                           f"open_clip's own transformer blocks")
    return cfg


def check_image_size(cfg: RunConfig) -> None:
    """The images the data pipeline makes (`data.image_size`) must be the side the arch's vision tower takes."""
    from harma.config import ConfigError

    side = arch_config(cfg.model.arch).get("vision_cfg", {}).get("image_size")
    sides = tuple(side) if isinstance(side, (list, tuple)) else (side, side)
    if side is not None and sides != (cfg.data.image_size, cfg.data.image_size):
        shown = side if sides[0] == sides[1] else "x".join(map(str, sides))
        raise ConfigError(f"data.image_size: model.arch {cfg.model.arch!r} takes {shown}-pixel images, got "
                          f"{cfg.data.image_size!r}; set data.image_size={shown}")


def build_clip(arch: str, quick_gelu: bool) -> nn.Module:
    cfg = arch_config(arch)
    cfg.pop("quick_gelu", None)
    return open_clip.CLIP(**cfg, quick_gelu=quick_gelu)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a checkpoint file safely and unwrap common containers (`state_dict`, `model`, `module.` prefix)."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"model.weights: file {p} not found (weights are local files; nothing is downloaded)")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # TorchScript archives and pickles with code land here
        raise WeightsError(f"model.weights: cannot load {p} with weights_only=True ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}); expected a state-dict checkpoint"
                           ) from None
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping):
        raise WeightsError(f"model.weights: {p} holds a {type(obj).__name__}, expected a state dict")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


def load_backbone_weights(clip: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Strict load; one error lists missing, unexpected and mis-shaped keys."""
    own = clip.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
                    for k in set(own) & set(state) if tuple(state[k].shape) != tuple(own[k].shape))
    if missing or unexpected or shapes:
        def head(items: list[str]) -> str:
            return ", ".join(items[:8]) + (f" ... ({len(items)} in all)" if len(items) > 8 else "")
        raise WeightsError(f"model.weights: {source} does not fit the arch: missing keys [{head(missing)}]; "
                           f"unexpected keys [{head(unexpected)}]; shape mismatches [{head(shapes)}]")
    clip.load_state_dict(dict(state), strict=True)


def _load_backbone(cfg: RunConfig) -> nn.Module:
    """The CLIP of `model.arch` with `model.weights` loaded; its random init is drawn from `train.seed` on a
    forked generator, so building it leaves the global random state as it found it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        clip = build_clip(cfg.model.arch, cfg.model.quick_gelu)
    if cfg.model.weights:
        load_backbone_weights(clip, read_state_dict(resolve_weights(cfg.model.weights)), cfg.model.weights)
    return clip


def build_backbone(cfg: RunConfig) -> nn.Module:
    """The frozen backbone, from the process's backbone cache when its key matches (harma.model.cache)."""
    file = resolve_weights(cfg.model.weights, verify=False) if cfg.model.weights else None
    if file is not None and not Path(file).is_file():
        return _load_backbone(cfg)   # read_state_dict says what is missing
    key = backbone_key(cfg.model.arch, cfg.model.quick_gelu, cfg.data.image_size, file, cfg.train.seed)
    return cached_backbone(key, lambda: _load_backbone(cfg))


def build_model(cfg: RunConfig) -> HarmaModel:
    """open_clip CLIP (arch + local weights) -> inject adapters -> freeze all but `adapter_params()`; every
    self-attention gets its input in the one-GEMM layout (harma.model.layout).  The adapters' random init is
    drawn from the global generator as the caller left it (the trainer seeds it first); the backbone's is not."""
    clip = build_backbone(cfg)
    inject_adapters(clip, cfg.adapter)
    seq_first_self_attention(clip)
    model = HarmaModel(clip, cfg.loss.temp_init, cfg.loss.temp_min, train_temperature=trains_temperature(cfg))
    freeze_all_but_adapters(model)
    return model


def tokenizer_for(cfg: RunConfig):
    """open_clip's BPE tokenizer (shipped inside open_clip; no download), context 77."""
    return open_clip.get_tokenizer("ViT-B-32")
