"""Inject HarMA adapters into an open_clip CLIP by wrapping each residual block's `mlp` (never editing open_clip).

`inject_adapters` walks `visual.transformer.resblocks` and `transformer.resblocks`, replaces every block's
`mlp` with an `AdaptedMLP`, builds the per-layer BiShareAdapters once and passes them in (shared between
towers when `share == "both"`), and returns the wrapped module names.  It fails loudly when a tower it was
asked to adapt has no blocks, or when the two towers' depths differ while BiShareAdapters are shared.
"""
from __future__ import annotations

from torch import nn

from harma.errors import InjectionError
from harma.config import AdapterConfig
from harma.model.adapters import AdaptedMLP, BiShareAdapter, MMAdapter


def tower_blocks(clip: nn.Module, tower: str) -> nn.ModuleList:
    """The residual blocks of one tower: `visual.transformer.resblocks` or `transformer.resblocks`."""
    owner = clip.visual if tower == "vision" else clip
    transformer = getattr(owner, "transformer", None)
    blocks = getattr(transformer, "resblocks", None)
    if not isinstance(blocks, nn.ModuleList) or len(blocks) == 0:
        raise InjectionError(f"{tower} tower: no transformer.resblocks found; harma needs an open_clip ViT CLIP")
    for i, block in enumerate(blocks):
        if not hasattr(block, "mlp") or isinstance(block.mlp, AdaptedMLP):
            raise InjectionError(f"{tower} tower block {i}: no plain `mlp` to wrap (already injected?)")
    return blocks


def _width(block: nn.Module) -> int:
    return block.ln_2.normalized_shape[0]


def _bishares(cfg: AdapterConfig, depth: int) -> list[BiShareAdapter | None]:
    if cfg.share == "none":
        return [None] * depth
    return [BiShareAdapter(cfg.bottleneck, cfg.bishare_width, cfg.heads, cfg.gate_init) for _ in range(depth)]


def inject_adapters(clip: nn.Module, cfg: AdapterConfig) -> list[str]:
    """Wrap every block's mlp in the towers `cfg.towers` selects; returns the wrapped module names."""
    towers = {"both": ("vision", "text"), "vision": ("vision",), "text": ("text",), "none": ()}[cfg.towers]
    blocks = {t: tower_blocks(clip, t) for t in towers}
    if cfg.share == "both" and len(towers) == 2 and len(blocks["vision"]) != len(blocks["text"]):
        raise InjectionError(f"adapter.share=both needs equal tower depths, got vision {len(blocks['vision'])} "
                             f"and text {len(blocks['text'])} blocks")
    depth = max((len(b) for b in blocks.values()), default=0)
    bishares = _bishares(cfg, depth)
    block_gate = None if cfg.block_gate == "open" else cfg.block_gate_init
    wrapped = []
    for tower, tower_list in blocks.items():
        attach = cfg.share == "both" or (cfg.share == "text" and tower == "text")
        prefix = "visual.transformer.resblocks" if tower == "vision" else "transformer.resblocks"
        for i, block in enumerate(tower_list):
            adapter = MMAdapter(_width(block), cfg.bottleneck, cfg.heads, cfg.gate_init,
                                bishare=bishares[i] if attach else None)
            block.mlp = AdaptedMLP(block.mlp, adapter, block_gate)
            wrapped.append(f"{prefix}.{i}.mlp")
    return wrapped
