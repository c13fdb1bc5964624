"""Trainability by structure: freeze everything, then unfreeze adapter modules (found by type), block gates
and the contrastive temperature.  Also counts trainable / total parameters per component for `model info`.
"""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from harma.model.adapters import ADAPTER_TYPES, AdaptedMLP, BiShareAdapter, MMAdapter


def freeze_all_but_adapters(model: nn.Module, train_temperature: bool = True) -> None:
    model.requires_grad_(False)
    for module in model.modules():
        if isinstance(module, ADAPTER_TYPES):
            module.requires_grad_(True)
        if isinstance(module, AdaptedMLP) and module.gate1 is not None:
            module.gate1.requires_grad_(True)
    temp = getattr(model, "temp", None)
    if isinstance(temp, nn.Parameter):
        temp.requires_grad_(train_temperature)


def _own_params(module: nn.Module, skip: type | None = None) -> int:
    """Parameters of `module`, excluding those inside children of type `skip`."""
    skipped = set()
    if skip is not None:
        for child in module.modules():
            if isinstance(child, skip) and child is not module:
                skipped.update(id(p) for p in child.parameters())
    return sum(p.numel() for p in module.parameters() if id(p) not in skipped)


def parameter_report(model: nn.Module) -> "OrderedDict[str, tuple[int, int]]":
    """{component: (count of modules, parameters)} for adapters, gates and temperature, plus totals."""
    report: "OrderedDict[str, tuple[int, int]]" = OrderedDict()

    def add(name: str, n: int) -> None:
        count, total = report.get(name, (0, 0))
        report[name] = (count + 1, total + n)

    seen_bishare: set[int] = set()
    for name, module in model.named_modules():
        if isinstance(module, MMAdapter):
            tower = "vision" if ".visual." in f".{name}" else "text"
            add(f"MMadapter ({tower})", _own_params(module, skip=BiShareAdapter))
        elif isinstance(module, BiShareAdapter) and id(module) not in seen_bishare:
            seen_bishare.add(id(module))
            add("BiShareAdapter", _own_params(module))
        elif isinstance(module, AdaptedMLP) and module.gate1 is not None:
            add("block gates", 1)
    temp = getattr(model, "temp", None)
    if isinstance(temp, nn.Parameter):
        report["temperature"] = (1, temp.numel())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    report["trainable total"] = (0, trainable)
    report["all parameters"] = (0, total)
    return report
