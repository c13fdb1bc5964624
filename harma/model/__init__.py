"""The HarMA model: adapters (adapters.py), injection into open_clip (inject.py), trainability (freeze.py),
building from config and local weights (build.py) and loading the authors' released checkpoints (original.py).
"""
from harma.model.adapters import AdaptedMLP, BiShareAdapter, MMAdapter
from harma.model.build import HarmaModel, WeightsError, build_model, tokenizer_for
from harma.model.original import load_original_checkpoint

__all__ = ["AdaptedMLP", "BiShareAdapter", "MMAdapter", "HarmaModel", "WeightsError", "build_model",
           "tokenizer_for", "load_original_checkpoint"]
