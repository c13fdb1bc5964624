"""How `harma study run|resume` ends: exit 0, 130 on SIGINT, 143 on SIGTERM, 1 for missing trials or too many
FAILED."""
import os
import signal

import pytest

from harma.cli import main
from harma.tune import runner
from harma.tune.outcome import SIGINT_EXIT, SIGTERM_EXIT, SigtermUnwinds, StopWatch, Terminated, study_outcome


def test_all_finished_few_failed_exits_0():
    assert study_outcome("s", 4, {"COMPLETE": 2, "PRUNED": 1, "FAILED": 1}).code == 0


def test_sigint_exits_130_and_points_to_resume():
    out = study_outcome("s", 12, {"COMPLETE": 3, "RUNNING": 2}, interrupted="SIGINT")
    assert out.code == 130 == SIGINT_EXIT
    assert "SIGINT" in out.message and "9 of 12" in out.message and "harma study resume s" in out.message
    assert "\n" not in out.message
    out = study_outcome("s", 12, {"COMPLETE": 3}, interrupted="SIGTERM")
    assert out.code == 143 == SIGTERM_EXIT and "stopped by SIGTERM" in out.message


def test_missing_without_sigint_exits_1():
    out = study_outcome("s", 4, {"COMPLETE": 3})
    assert out.code == 1 and "1 of 4" in out.message and "harma study resume s" in out.message


def test_too_many_failed_exits_1_naming_the_counts():
    out = study_outcome("s", 12, {"COMPLETE": 1, "FAILED": 11})
    assert out.code == 1
    assert "11 of 12 trial(s) FAILED" in out.message and "1 COMPLETE" in out.message
    assert "0.5" in out.message


def test_failed_share_is_a_strict_threshold():
    assert study_outcome("s", 4, {"COMPLETE": 2, "FAILED": 2}, max_failed_share=0.5).code == 0
    assert study_outcome("s", 4, {"COMPLETE": 2, "FAILED": 2}, max_failed_share=0.25).code == 1
    assert study_outcome("s", 4, {"FAILED": 4}, max_failed_share=1.0).code == 0


def test_empty_study_exits_0():
    assert study_outcome("s", 0, {}).code == 0


def test_stop_watch_sees_a_handler_that_put_ours_back():
    """Mimics Ray Tune: install its own handler, and on SIGINT restore the one it found."""
    before = signal.getsignal(signal.SIGINT)          # SIG_IGN when the suite runs as a background job
    term_before = signal.getsignal(signal.SIGTERM)
    with StopWatch() as watch:
        found = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, lambda *a: None)
        assert watch.interruption() is None
        signal.signal(signal.SIGINT, found)           # what Tune does on the first Ctrl-C
        assert watch.interruption() == "SIGINT"
    assert signal.getsignal(signal.SIGINT) is before  # the handlers found before are back
    assert signal.getsignal(signal.SIGTERM) is term_before


def test_stop_watch_raises_keyboard_interrupt_when_tune_is_not_watching():
    with StopWatch() as watch:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
        assert watch.interruption() == "SIGINT"


def test_sigterm_is_handed_to_tunes_graceful_stop_and_named():
    """SIGTERM while Tune watches calls Tune's SIGINT handler (which restores ours); it is named SIGTERM."""
    calls = []
    with StopWatch() as watch:
        ours = signal.getsignal(signal.SIGINT)

        def tune_handler(signum, frame):               # what Tune's handler does: stop, put back the one found
            calls.append(signum)
            signal.signal(signal.SIGINT, ours)

        signal.signal(signal.SIGINT, tune_handler)
        os.kill(os.getpid(), signal.SIGTERM)
        assert calls == [signal.SIGINT] and watch.interruption() == "SIGTERM"
        with pytest.raises(Terminated):                 # a second SIGTERM: Tune is no longer watching
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_unwinds_as_terminated_and_the_handler_found_before_comes_back():
    before = signal.getsignal(signal.SIGTERM)
    with SigtermUnwinds() as unwinds:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)   # what ray.init does: a handler of its own
        unwinds.install()
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.fixture
def study_s(tmp_path, monkeypatch):
    """A working directory with studies/s.yaml (the smoke study named s): the CLI loads it before the run."""
    from pathlib import Path

    import yaml

    smoke = yaml.safe_load((Path(__file__).resolve().parents[2] / "studies" / "smoke.yaml").read_text())
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "s.yaml").write_text(yaml.safe_dump({**smoke, "name": "s"}))
    monkeypatch.chdir(tmp_path)


def _fake_run(summary=None, raise_interrupt=False, raise_terminated=False):
    def run_study(target, address=None, resume=False, max_retries=2, **watching):
        if raise_terminated:
            raise Terminated
        if raise_interrupt:
            raise KeyboardInterrupt
        return summary
    return run_study


@pytest.mark.parametrize("summary, flags, code, words", [
    ({"name": "s", "planned": 4, "counts": {"COMPLETE": 4}, "interrupted": None}, [], 0, None),
    ({"name": "s", "planned": 4, "counts": {"COMPLETE": 1}, "interrupted": "SIGINT"}, [], 130, "harma study resume s"),
    ({"name": "s", "planned": 4, "counts": {"COMPLETE": 1}, "interrupted": "SIGTERM"}, [], 143, "by SIGTERM"),
    ({"name": "s", "planned": 4, "counts": {"COMPLETE": 1, "FAILED": 3}, "interrupted": None}, [], 1,
     "3 of 4 trial(s) FAILED"),
    ({"name": "s", "planned": 4, "counts": {"COMPLETE": 1, "FAILED": 3}, "interrupted": None},
     ["--max-failed-share", "0.8"], 0, None),
])
def test_study_run_exit_codes(monkeypatch, capsys, study_s, summary, flags, code, words):
    monkeypatch.setattr(runner, "run_study", _fake_run(summary))
    assert main(["study", "run", "studies/s.yaml", *flags]) == code
    err = capsys.readouterr().err
    if words is None:
        assert err == ""
    else:
        assert len(err.strip().splitlines()) == 1 and words in err


def test_second_ctrl_c_exits_130(monkeypatch, capsys, study_s):
    monkeypatch.setattr(runner, "run_study", _fake_run(raise_interrupt=True))
    assert main(["study", "resume", "s"]) == 130
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "harma study resume s" in err


def test_sigterm_outside_tune_exits_143_with_one_line(monkeypatch, capsys, study_s):
    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(runner, "run_study", _fake_run(raise_terminated=True))
    assert main(["study", "resume", "s"]) == 143
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "SIGTERM" in err and "harma study resume s" in err
    assert signal.getsignal(signal.SIGTERM) is before


def test_max_failed_share_must_be_a_share(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["study", "run", "s.yaml", "--max-failed-share", "2"])
    assert exc.value.code == 2 and "between 0 and 1" in capsys.readouterr().err
