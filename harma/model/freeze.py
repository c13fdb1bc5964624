"""Trainability by structure: freeze everything, then unfreeze exactly `HarmaModel.adapter_params()` (adapter
modules found by type, block gates, the temperature unless the config froze it).  Also counts the trained
parameters per component, and all parameters, for `harma model info`.
"""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from harma.model.adapters import AdaptedMLP, BiShareAdapter, MMAdapter


def freeze_all_but_adapters(model: nn.Module) -> None:
    """requires_grad = False everywhere, then True for each of `model.adapter_params()`."""
    model.requires_grad_(False)
    for p in model.adapter_params().values():
        p.requires_grad_(True)


def _own_params(module: nn.Module, skip: type | None = None) -> int:
    """Parameters of `module` (an adapter: all of them train), excluding those inside children of type `skip`."""
    skipped = set()
    if skip is not None:
        for child in module.modules():
            if isinstance(child, skip) and child is not module:
                skipped.update(id(p) for p in child.parameters())
    return sum(p.numel() for p in module.parameters() if id(p) not in skipped)


def parameter_report(model: nn.Module) -> "OrderedDict[str, tuple[int, int]]":
    """{component: (count of modules, trained parameters)} for adapters, block gates and temperature (those that
    train), then the trained total (`adapter_params()`) and all parameters."""
    params = model.adapter_params()
    trained = {id(p) for p in params.values()}
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
    if id(model.temp) in trained:
        report["temperature"] = (1, model.temp.numel())
    report["trainable total"] = (0, sum(p.numel() for p in params.values()))
    report["all parameters"] = (0, sum(p.numel() for p in model.parameters()))
    return report
