"""The fast path's compiled functions: `torch.compile` asked once per process for each role and mode, a clock of
the seconds torch spends compiling, and an eager fallback that is never silent.

`resolve_mode` reads `train.compile` for a device: `auto` is `reduce-overhead` (CUDA graphs) on CUDA and `off`
elsewhere, so a CPU run stays eager.  Each role (the training forward, the image encoder, the text encoder) is a
plain function of (module, inputs), compiled once per process and mode (`compiled_function`); Dynamo keeps its
graphs on the function, so a later run of the process (a trial in a reused trial process) whose model and
batches have the same shapes passes their guards and compiles nothing.  `begin_run` resets Dynamo when a run's
shapes (`run_shapes`: model, adapters, image size, caption length, batch sizes, precision, device) differ from
the last run's: the last run's graphs, and the memory their CUDA graphs hold, go, and Dynamo's recompile limit
is never spent across trials; the study's on-disk compile cache makes the new compile cheaper.  `FastCall` runs
a role's work with the compiled function; when torch cannot compile it (`BackendCompilerFailed`, `Unsupported`) or
cannot capture its CUDA graph (with `triton.cudagraph_or_error` set here, the skip Inductor would only log is a
RuntimeError, told apart from others by Inductor's `cudagraph_skips` counter), the role falls back to eager for
the rest of the process: one line on stderr, kept (`notes`) for the epoch records.  `compile_seconds` sums the
wall time between torch's compile-start and compile-end callbacks (tracing, Inductor, a lazily compiled backward,
CUDA-graph recording).  torch's compiler is imported only when a mode other than `off` is used.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, TypeVar

import torch
from torch import nn

R = TypeVar("R")
TRAIN_FORWARD, IMAGE_ENCODER, TEXT_ENCODER = "train forward", "image encoder", "text encoder"
REASON_CHARS = 240
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")     # the modes whose Inductor options turn CUDA graphs on


def resolve_mode(mode: str, device: torch.device) -> str:
    """`train.compile` as it runs on `device`: `auto` is reduce-overhead on CUDA and off elsewhere."""
    if mode == "auto":
        return "reduce-overhead" if device.type == "cuda" else "off"
    return mode


def _train_forward(module: nn.Module, images: torch.Tensor, tokens: torch.Tensor) -> Any:
    return module(images, tokens)


def _encode_images(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    return model.encode_image(images)


def _encode_texts(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    return model.encode_text(tokens)


FUNCTIONS: dict[str, Callable[..., Any]] = {TRAIN_FORWARD: _train_forward, IMAGE_ENCODER: _encode_images,
                                            TEXT_ENCODER: _encode_texts}


@dataclass
class _Process:
    """What this process keeps across runs: compiled functions, roles fallen back to eager, notes, the clock."""
    compiled: dict[tuple[str, str], Callable[..., Any]] = field(default_factory=dict)
    eager: set[tuple[str, str]] = field(default_factory=set)
    notes: dict[tuple[str, str, str], str] = field(default_factory=dict)   # (role, mode, kind) -> line
    seconds: float = 0.0
    started: float | None = None
    shapes: Hashable = None                  # run_shapes of the last run begun in this process


_STATE = _Process()


def reset_process() -> None:
    """Forget the compiled functions, fallbacks, notes and clock (tests)."""
    _STATE.__init__()


def _clock_start(_args: Any) -> None:
    _STATE.started = time.perf_counter()


def _clock_end(_args: Any) -> None:
    if _STATE.started is not None:
        _STATE.seconds += time.perf_counter() - _STATE.started
        _STATE.started = None


def _install_clock() -> None:
    """Register the clock's callbacks unless they are registered (`torch._dynamo.reset()` clears them)."""
    from torch._dynamo.callback import callback_handler

    if _clock_start not in callback_handler.start_callbacks:
        callback_handler.register_start_callback(_clock_start)
        callback_handler.register_end_callback(_clock_end)


def compile_seconds() -> float:
    """Wall seconds this process has spent compiling so far (0.0 when nothing was compiled)."""
    return _STATE.seconds


def run_shapes(cfg: Any, device: torch.device) -> Hashable:
    """What decides the shapes (and the constants) of a run's compiled graphs."""
    return (repr(cfg.model), repr(cfg.adapter), cfg.data.image_size, cfg.data.max_words, cfg.train.batch_size,
            cfg.train.eval_batch_size, cfg.train.precision, str(device))


def begin_run(shapes: Hashable) -> None:
    """A run begins: Dynamo is reset when its shapes differ from the last run's in this process (nothing when
    Dynamo was never imported)."""
    if shapes != _STATE.shapes and "torch._dynamo" in sys.modules:
        torch._dynamo.reset()
    _STATE.shapes = shapes


def compiled_function(role: str, mode: str) -> Callable[..., Any]:
    """`torch.compile(FUNCTIONS[role], mode=mode, dynamic=False)`, asked for once per process and (role, mode)."""
    key = (role, mode)
    if key not in _STATE.compiled:
        if mode in CUDA_GRAPH_MODES:
            import torch._inductor.config as inductor_config

            inductor_config.triton.cudagraph_or_error = True   # a graph torch cannot capture raises: see FastCall
        _STATE.compiled[key] = torch.compile(FUNCTIONS[role], mode=mode, dynamic=False)
    return _STATE.compiled[key]


def _cudagraph_skips() -> int:
    from torch._dynamo.utils import counters

    return int(counters["inductor"]["cudagraph_skips"])


def _compile_errors() -> tuple[type[BaseException], ...]:
    from torch._dynamo.exc import BackendCompilerFailed, Unsupported

    return BackendCompilerFailed, Unsupported


def _note(role: str, mode: str, kind: str, text: str) -> None:
    """Print `text` once per process and (role, mode, kind), and keep it for `notes`."""
    if (role, mode, kind) not in _STATE.notes:
        _STATE.notes[(role, mode, kind)] = text
        print(f"harma: {text}", file=sys.stderr, flush=True)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _reason(exc: BaseException) -> str:
    """The error's type and first line; for a compiler's failure, the error the compiler raised inside it."""
    inner = getattr(exc, "inner_exception", None)
    text = f"{type(exc).__name__} from {_first_line(inner)}" if inner is not None else _first_line(exc)
    return text[:REASON_CHARS]


def notes(mode: str) -> str | None:
    """This process's one-line notes for `mode` (fallbacks, graphs run without CUDA graphs), or None."""
    found = [text for (_, m, _), text in sorted(_STATE.notes.items()) if m == mode]
    return "; ".join(found) or None


class FastCall:
    """One role's calls on `module`: compiled in `mode` (a resolved mode) until torch fails it, then eager."""

    def __init__(self, role: str, module: nn.Module, mode: str) -> None:
        self.role, self.module, self.mode = role, module, mode
        self._graph_fn = compiled_function(role, mode) if mode != "off" else None
        if self._graph_fn is not None:
            _install_clock()                # every time: torch._dynamo.reset() drops the clock's callbacks

    @property
    def compiled(self) -> bool:
        """Calls go through the compiled function (a mode other than off, and no fallback in this process)."""
        return self._graph_fn is not None and (self.role, self.mode) not in _STATE.eager

    def eager(self, *inputs: torch.Tensor) -> Any:
        return FUNCTIONS[self.role](self.module, *inputs)

    def graph(self, *inputs: torch.Tensor) -> Any:
        if self.mode in CUDA_GRAPH_MODES:
            torch.compiler.cudagraph_mark_step_begin()
        return self._graph_fn(self.module, *inputs)

    def run(self, work: Callable[[Callable[..., Any]], R]) -> R:
        """work(call) with the compiled call; when torch fails to compile or capture it, once more with the eager
        call, which this role keeps for the rest of the process.  Any other error propagates."""
        if not self.compiled:
            return work(self.eager)
        skips = _cudagraph_skips()
        try:
            result = work(self.graph)
        except _compile_errors() as exc:
            self._fall_back(exc)
        except RuntimeError as exc:
            if _cudagraph_skips() == skips:
                raise
            self._fall_back(exc)
        else:
            if self.mode in CUDA_GRAPH_MODES and _cudagraph_skips() > skips:
                _note(self.role, self.mode, "no graphs",
                      f"the {self.role} runs compiled without CUDA graphs: torch skipped capturing "
                      f"{_cudagraph_skips() - skips} graph(s) (TORCH_LOGS=cudagraphs says why)")
            return result
        return work(self.eager)

    def _fall_back(self, exc: BaseException) -> None:
        _STATE.eager.add((self.role, self.mode))
        _note(self.role, self.mode, "eager", f"the {self.role} runs eager from now on in this process: "
                                             f"train.compile mode {self.mode} failed ({_reason(exc)})")
