"""harma: HarMA adapters inside a frozen open_clip CLIP for remote-sensing image-text retrieval.

`import harma` needs only torch and open_clip.  The model API is `harma.build_model(cfg)`; the Ray-free
trainer is `harma.train.train(cfg, report=...)`; Ray Tune studies live in `harma.tune`, Parquet results in
`harma.results` and report pages in `harma.report`.
"""
from harma.config import RunConfig, load_config

__version__ = "0.1.0"
__all__ = ["RunConfig", "load_config", "build_model", "__version__"]


def build_model(cfg):
    """Build the HarMA model for a RunConfig (see harma.model.build)."""
    from harma.model.build import build_model as _build

    return _build(cfg)
