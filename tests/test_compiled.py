"""The fast path on CPU with torch's compiler faked: what `train.compile` resolves to, `torch.compile` asked for once
per process and role and reused across epochs and runs, padded evaluation batches cut back, and the eager
fallback (one printed line, recorded in every epoch record) for each torch error it stands for, while any other
error still stops the run.  The compile clock is checked against a real (eager-backend) compile."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import harma.compiled as compiled
from harma.compiled import (IMAGE_ENCODER, TEXT_ENCODER, TRAIN_FORWARD, FastCall, compile_seconds,
                            compiled_function, resolve_mode)
from harma.config import apply_overrides
from harma.train import train

ROLES = [TRAIN_FORWARD, IMAGE_ENCODER, TEXT_ENCODER]


@pytest.fixture(autouse=True)
def fresh_process():
    """Each test starts as a new process would: no compiled functions, fallbacks or notes; Inductor's
    cudagraph_or_error (set by a reduce-overhead compile) is put back after it."""
    import torch._inductor.config as inductor_config

    or_error = inductor_config.triton.cudagraph_or_error
    compiled.reset_process()
    yield
    compiled.reset_process()
    inductor_config.triton.cudagraph_or_error = or_error


@pytest.fixture
def fake_compile(monkeypatch):
    """torch.compile recording (function name, mode, dynamic) and returning `wrap(fn)` (the function itself by
    default); CUDA-graph step marks counted in `marks`."""
    seen = {"calls": [], "marks": 0, "wrap": lambda fn: fn}

    def fake(fn, mode=None, dynamic=None, **kw):
        seen["calls"].append((fn.__name__, mode, dynamic))
        return seen["wrap"](fn)

    def mark():
        seen["marks"] += 1

    monkeypatch.setattr(torch, "compile", fake)
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", mark)
    return seen


def test_auto_is_cuda_graphs_on_cuda_and_eager_on_cpu():
    assert resolve_mode("auto", torch.device("cuda", 0)) == "reduce-overhead"
    assert resolve_mode("auto", torch.device("cpu")) == "off"
    for mode in ("off", "default", "reduce-overhead", "max-autotune"):
        assert resolve_mode(mode, torch.device("cpu")) == resolve_mode(mode, torch.device("cuda")) == mode


def test_the_cuda_graph_modes_are_those_whose_inductor_options_turn_cuda_graphs_on():
    from torch._inductor import list_mode_options

    for mode in ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"):
        assert (mode in compiled.CUDA_GRAPH_MODES) == bool(list_mode_options(mode).get("triton.cudagraphs")), mode


def test_max_autotune_marks_each_cuda_graph_step_as_reduce_overhead_does(tiny_cfg, tmp_path, fake_compile):
    import torch._inductor.config as inductor_config

    cfg = cfg_for(tiny_cfg, tmp_path, "m", **{"train.compile": "max-autotune"})
    train(cfg)
    assert fake_compile["marks"] == marks_expected(cfg, runs=1)
    assert inductor_config.triton.cudagraph_or_error


def test_each_role_is_compiled_once_per_process_and_mode_with_static_shapes(fake_compile):
    import torch._inductor.config as inductor_config

    first = [compiled_function(role, "reduce-overhead") for role in ROLES]
    assert inductor_config.triton.cudagraph_or_error       # a graph torch cannot capture raises, never skips
    again = [compiled_function(role, "reduce-overhead") for role in ROLES]
    other = compiled_function(TRAIN_FORWARD, "default")
    assert first == again and other is compiled.FUNCTIONS[TRAIN_FORWARD]
    assert fake_compile["calls"] == [("_train_forward", "reduce-overhead", False),
                                     ("_encode_images", "reduce-overhead", False),
                                     ("_encode_texts", "reduce-overhead", False),
                                     ("_train_forward", "default", False)]


def test_compile_off_asks_torch_for_nothing(fake_compile):
    call = FastCall(TRAIN_FORWARD, nn.Identity(), "off")
    assert not call.compiled and call.run(lambda fn: fn == call.eager) and fake_compile["calls"] == []


def cfg_for(tiny_cfg, tmp_path, name: str, **overrides):
    """One epoch (two where a test says), evaluation batches of 16 (the val and test splits end in a short one)."""
    return apply_overrides(tiny_cfg, {"train.out_dir": str(tmp_path / name), "train.eval_batch_size": 16,
                                      "train.epochs": 1, **overrides})


def marks_expected(cfg, runs: int) -> int:
    """CUDA-graph step marks of `runs` runs of `cfg`: one per train step and per (padded) eval batch."""
    from harma.data import build_datasets
    from harma.model.build import tokenizer_for

    data = build_datasets(cfg.data, tokenizer_for(cfg))
    per_epoch = len(data.train) // cfg.train.batch_size
    for split in (data.val, data.test):
        per_epoch += -(-len(split.images) // cfg.train.eval_batch_size) + -(-len(split.tokens) //
                                                                            cfg.train.eval_batch_size)
    return runs * cfg.train.epochs * per_epoch


def test_a_compiled_run_asks_once_per_process_and_reuses_it_across_epochs_and_runs(tiny_cfg, tmp_path,
                                                                                     fake_compile, capsys):
    fast = {"train.compile": "reduce-overhead", "train.epochs": 2}
    cfg = cfg_for(tiny_cfg, tmp_path, "a", **fast)
    first = train(cfg)
    second = train(cfg_for(tiny_cfg, tmp_path, "b", **fast))
    assert fake_compile["calls"] == [("_train_forward", "reduce-overhead", False),
                                     ("_encode_images", "reduce-overhead", False),
                                     ("_encode_texts", "reduce-overhead", False)]
    assert fake_compile["marks"] == marks_expected(cfg, runs=2)
    assert [r.train for r in first.history] == [r.train for r in second.history]      # the same run twice
    assert all(r.compile_notes is None and r.compile_seconds == 0.0 for r in first.history + second.history)
    assert capsys.readouterr().err == ""


def test_compiled_training_steps_are_the_eager_steps_and_padded_eval_is_cut_back(tiny_cfg, tmp_path,
                                                                                 fake_compile, monkeypatch):
    sizes = []
    real = compiled.FUNCTIONS[IMAGE_ENCODER]
    monkeypatch.setitem(compiled.FUNCTIONS, IMAGE_ENCODER, lambda m, x: (sizes.append(len(x)), real(m, x))[1])
    eager = train(cfg_for(tiny_cfg, tmp_path, "eager"))
    eager_sizes, sizes[:] = list(sizes), []
    fast = train(cfg_for(tiny_cfg, tmp_path, "fast", **{"train.compile": "reduce-overhead"}))
    assert [r.train for r in fast.history] == [r.train for r in eager.history]
    assert set(sizes) == {16} and sorted(set(eager_sizes)) != [16]             # static shapes only when compiled
    assert len(sizes) == len(eager_sizes)
    for a, b in zip(fast.history, eager.history):
        assert a.val == pytest.approx(b.val, abs=1e-9) and a.test == pytest.approx(b.test, abs=1e-9)


def test_a_later_run_in_the_process_reuses_the_graphs_torch_made(tiny_cfg, tmp_path, monkeypatch):
    """Real Dynamo (its eager backend, so nothing is code-generated): a second run with a new model of the same
    shapes traces nothing new."""
    from torch._dynamo.utils import counters

    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, mode=None, dynamic=None: real(fn, backend="eager",
                                                                                 dynamic=dynamic))
    torch._dynamo.reset()
    counters.clear()
    try:
        first = train(cfg_for(tiny_cfg, tmp_path, "a", **{"train.compile": "default"}))
        graphs = counters["stats"]["unique_graphs"]
        second = train(cfg_for(tiny_cfg, tmp_path, "b", **{"train.compile": "default"}))
        assert graphs >= 3 and counters["stats"]["unique_graphs"] == graphs
        assert first.history[0].compile_seconds > 0 and second.history[0].compile_seconds == 0.0
    finally:
        torch._dynamo.reset()


def test_a_later_run_with_other_shapes_starts_from_a_reset_dynamo(tiny_cfg, tmp_path, monkeypatch):
    """Another batch size: the last run's graphs are dropped (Dynamo reset, so its recompile limit is never spent
    across trials) and this run traces its own; the same shapes again keep them."""
    from torch._dynamo.utils import counters

    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, mode=None, dynamic=None: real(fn, backend="eager",
                                                                                 dynamic=dynamic))
    resets = []
    real_reset = torch._dynamo.reset
    monkeypatch.setattr(torch._dynamo, "reset", lambda: (resets.append(1), real_reset())[1])
    real_reset()
    counters.clear()
    try:
        train(cfg_for(tiny_cfg, tmp_path, "a", **{"train.compile": "default"}))
        before = len(resets)
        train(cfg_for(tiny_cfg, tmp_path, "b", **{"train.compile": "default", "train.batch_size": 4}))
        assert len(resets) == before + 1
        traced = counters["stats"]["unique_graphs"]
        train(cfg_for(tiny_cfg, tmp_path, "c", **{"train.compile": "default", "train.batch_size": 4}))
        assert len(resets) == before + 1 and counters["stats"]["unique_graphs"] == traced
    finally:
        real_reset()


def failing(error: Exception, skips: int = 0):
    """A compiled function that bumps Inductor's cudagraph_skips counter by `skips` and raises `error`."""
    def wrap(fn):
        def call(*args):
            from torch._dynamo.utils import counters
            counters["inductor"]["cudagraph_skips"] += skips
            raise error
        return call
    return wrap


def backend_failed() -> Exception:
    from torch._dynamo.exc import BackendCompilerFailed

    inner = RuntimeError("skipping cudagraphs due to mutated inputs (1 instances)\nstack")
    return BackendCompilerFailed(lambda: None, inner, None)


@pytest.mark.parametrize("error,skips,why", [
    (backend_failed(), 0,
     "BackendCompilerFailed from RuntimeError: skipping cudagraphs due to mutated inputs (1 instances)"),
    (RuntimeError("skipping cudagraphs due to cpu device (arg0_1)"), 1,
     "RuntimeError: skipping cudagraphs due to cpu device (arg0_1)"),
])
def test_a_graph_torch_cannot_capture_falls_back_to_eager_with_one_line(tiny_cfg, tmp_path, fake_compile, capsys,
                                                                        error, skips, why):
    fake_compile["wrap"] = failing(error, skips)
    eager = train(cfg_for(tiny_cfg, tmp_path, "eager"))
    fast = train(cfg_for(tiny_cfg, tmp_path, "fast", **{"train.compile": "reduce-overhead"}))
    again = train(cfg_for(tiny_cfg, tmp_path, "again", **{"train.compile": "reduce-overhead"}))
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"harma: the {role} runs eager from now on in this process: train.compile mode "
                     f"reduce-overhead failed ({why})" for role in ROLES]
    assert [r.train for r in fast.history] == [r.train for r in again.history] == [r.train for r in eager.history]
    assert {r.compile_notes for r in fast.history + again.history} == {
        "; ".join(sorted(line.removeprefix("harma: ") for line in lines))}
    assert len(fake_compile["calls"]) == 3


def test_any_other_error_of_a_compiled_call_stops_the_run(tiny_cfg, tmp_path, fake_compile, capsys):
    fake_compile["wrap"] = failing(RuntimeError("CUDA error: an illegal memory access was encountered"))
    with pytest.raises(RuntimeError, match="illegal memory access"):
        train(cfg_for(tiny_cfg, tmp_path, "x", **{"train.compile": "reduce-overhead"}))
    assert capsys.readouterr().err == "" and compiled.notes("reduce-overhead") is None


def test_graphs_torch_skipped_without_an_error_are_noted_once(fake_compile, capsys):
    from torch._dynamo.utils import counters

    def skipping(fn):
        def call(*args):
            counters["inductor"]["cudagraph_skips"] += 2
            return fn(*args)
        return call

    fake_compile["wrap"] = skipping
    call = FastCall(TRAIN_FORWARD, lambda images, tokens: images * 2, "reduce-overhead")
    for _ in range(3):
        assert torch.equal(call.run(lambda forward: forward(torch.ones(2), None)), torch.full((2,), 2.0))
    note = ("the train forward runs compiled without CUDA graphs: torch skipped capturing 2 graph(s) "
            "(TORCH_LOGS=cudagraphs says why)")
    assert capsys.readouterr().err == f"harma: {note}\n" and compiled.notes("reduce-overhead") == note
    assert call.compiled and fake_compile["marks"] == 3


def test_the_clock_counts_the_seconds_torch_compiles_and_nothing_after():
    """Also after `torch._dynamo.reset()`, which drops torch's compile callbacks: the next FastCall puts the clock's
    back (bench_gpu_step resets Dynamo before each compiled row)."""
    FastCall(TRAIN_FORWARD, nn.Identity(), "default")
    torch._dynamo.reset()
    FastCall(TEXT_ENCODER, nn.Identity(), "default")

    def double(x):
        return x * 2 + 1

    fn = torch.compile(double, backend="eager", dynamic=False)
    before = compile_seconds()
    try:
        fn(torch.ones(3))
        after_first = compile_seconds()
        fn(torch.ones(3))
        assert after_first > before and compile_seconds() == after_first
    finally:
        torch._dynamo.reset()
