"""HarMA's adapter modules: MMadapter, BiShareAdapter and the block wrapper that puts them after each MLP.

Written from HARMA.md §1-4.  Tensors are batch-first [N, L, C]; every attention attends over the L tokens of
one sample.  Attribute names follow the authors' checkpoint layout (`img_proj_down`, `multihead_attention`,
`gate1`, `l1`, `l2`, `multihead_attention1`) so their released weights map 1:1.  The zero-initialised `up` /
`l2` projections make every adapter an identity at init.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _self_attention(mha: nn.MultiheadAttention, x: torch.Tensor) -> torch.Tensor:
    return mha(x, x, x, need_weights=False)[0]


class BiShareAdapter(nn.Module):
    """mix = s*MHA2(l1(y)) + (1-s)*l1(y); out = y + l2(mix); no nonlinearity (the authors' code has none)."""

    def __init__(self, width: int = 128, inner: int = 64, heads: int = 8, gate_init: float = 0.6):
        super().__init__()
        self.l1 = nn.Linear(width, inner)
        self.l2 = nn.Linear(inner, width)
        self.multihead_attention1 = nn.MultiheadAttention(inner, heads, batch_first=True)
        self.gate1 = nn.Parameter(torch.tensor(float(gate_init)))
        nn.init.zeros_(self.l2.weight)
        nn.init.zeros_(self.l2.bias)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        v = self.l1(y)
        t = _self_attention(self.multihead_attention1, v)
        s = torch.sigmoid(self.gate1)
        return y + self.l2(s * t + (1 - s) * v)


class MMAdapter(nn.Module):
    """u = gelu(down(z)); a = MHA(u); a = B(a) if B; a = MHA(a) (same MHA); m = s*u + (1-s)*a; z + up(m)."""

    def __init__(self, width: int, bottleneck: int = 128, heads: int = 8, gate_init: float = 0.6,
                 bishare: BiShareAdapter | None = None):
        super().__init__()
        self.img_proj_down = nn.Linear(width, bottleneck)
        self.img_proj_up = nn.Linear(bottleneck, width)
        self.multihead_attention = nn.MultiheadAttention(bottleneck, heads, batch_first=True)
        self.gate1 = nn.Parameter(torch.tensor(float(gate_init)))
        self.bishare = bishare
        nn.init.zeros_(self.img_proj_up.weight)
        nn.init.zeros_(self.img_proj_up.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        u = F.gelu(self.img_proj_down(z))
        a = _self_attention(self.multihead_attention, u)
        if self.bishare is not None:
            a = self.bishare(a)
        a = _self_attention(self.multihead_attention, a)
        s = torch.sigmoid(self.gate1)
        return z + self.img_proj_up(s * u + (1 - s) * a)


class AdaptedMLP(nn.Module):
    """Replaces a block's `mlp`: z = mlp(x); returns g*A(z) + (1-g)*z with g = sigmoid(gate1), or A(z) when open."""

    def __init__(self, mlp: nn.Module, mmadapter: MMAdapter, block_gate_init: float | None = 0.6):
        super().__init__()
        self.mlp = mlp
        self.mmadapter = mmadapter
        if block_gate_init is None:
            self.gate1 = None
        else:
            self.gate1 = nn.Parameter(torch.tensor(float(block_gate_init)))

    @property
    def c_fc(self) -> nn.Module:
        """open_clip reads `block.mlp.c_fc` to find the weight dtype; forward it to the wrapped MLP."""
        return self.mlp.c_fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.mlp(x)
        adapted = self.mmadapter(z)
        if self.gate1 is None:
            return adapted
        g = torch.sigmoid(self.gate1)
        return g * adapted + (1 - g) * z


ADAPTER_TYPES = (MMAdapter, BiShareAdapter)


def adapter_parameters(module: nn.Module) -> list[nn.Parameter]:
    """Every parameter of each MMAdapter / BiShareAdapter inside `module`, and each AdaptedMLP's block gate."""
    found: list[nn.Parameter] = []
    for child in module.modules():
        if isinstance(child, ADAPTER_TYPES):
            found.extend(child.parameters())
        elif isinstance(child, AdaptedMLP) and child.gate1 is not None:
            found.append(child.gate1)
    return found
