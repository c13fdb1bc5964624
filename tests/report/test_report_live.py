"""The live report: a page rebuilt while a study runs, when its results change and at most every N seconds,
listing running trials; in the browser the reloaded page shows the new state without errors."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from fake_studies import curve, trial_record, write_epochs

from harma.report.browser import CHROMIUM, Browser, wait_rendered
from harma.report.live import LiveReport, live_report
from harma.results.store import ResultsStore
from harma.results.schema import StudyColumns

COLUMNS = StudyColumns("live", {"loss.gamma": "float", "train.seed": "int"})

VAL = {m: 30.0 for m in ("r_mean", "txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5", "img_r10", "r_mean_tie_gap")}


def start(store: ResultsStore, tid: str, i: int, status: str = "RUNNING") -> None:
    done = status != "RUNNING"
    store.write_trial(trial_record("live", tid, "search", status, i, VAL if done else None, VAL if done else None,
                                   seed=0, stop_epoch=3 if done else None, best_epoch=3 if done else None,
                                   params={"loss.gamma": 1.0 + i, "train.seed": 0}), COLUMNS)


def test_rebuilds_only_on_change_and_at_most_every_n_seconds(tmp_path):
    store = ResultsStore(tmp_path / "r")
    start(store, "trial-0000", 0)
    write_epochs(store, "live", "trial-0000", 25.0, 2)
    live = LiveReport(store, "live", tmp_path / "out", every=0)
    assert live.poll() and live.builds == 1
    html = (tmp_path / "out" / "index.html").read_text()
    assert "Running trials" in html and "Live report: rebuilt at" in html
    last = f"{curve(25.0, 2)[-1]:.2f}"  # epochs reported, then the last val mR
    assert re.search(rf'<td class="text">trial-0000</td>.*?<td class="num">2</td><td class="num">{last}</td>', html)
    assert not live.poll() and live.builds == 1  # nothing changed: no rewrite
    start(store, "trial-0000", 0, "COMPLETE")
    assert live.poll() and live.builds == 2
    assert "Running trials" not in (tmp_path / "out" / "index.html").read_text()
    slow = LiveReport(store, "live", tmp_path / "slow", every=3600)
    assert slow.poll() and slow.builds == 1
    start(store, "trial-0001", 1)
    assert not slow.poll()  # changed, but within the interval
    assert slow.poll(force=True) and slow.builds == 2
    with pytest.raises(ValueError, match="every=-1"):
        LiveReport(store, "live", tmp_path / "x", every=-1)


def test_live_report_thread_follows_a_running_study_and_builds_the_final_page(tmp_path):
    store = ResultsStore(tmp_path / "r")
    live = LiveReport(store, "live", tmp_path / "out", every=0)
    with live_report(live, poll_seconds=0.05):
        start(store, "trial-0000", 0)
        page = tmp_path / "out" / "index.html"
        deadline = time.time() + 20            # a first build may come before the row: wait for the one after it
        while not (page.is_file() and "Running trials" in page.read_text()) and time.time() < deadline:
            time.sleep(0.05)
        assert "Running trials" in page.read_text()
        start(store, "trial-0000", 0, "COMPLETE")
    html = (tmp_path / "out" / "index.html").read_text()
    assert "Running trials" not in html and "1 COMPLETE" in html
    assert "when this run of the study ended" in html and "reload to update" not in html


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not found")
def test_browser_sees_the_page_update_while_the_study_runs(tmp_path):
    store = ResultsStore(tmp_path / "r")
    start(store, "trial-0000", 0, "COMPLETE")
    write_epochs(store, "live", "trial-0000", 30.0, 3)
    start(store, "trial-0001", 1)
    live = LiveReport(store, "live", tmp_path / "out", every=0)
    page = tmp_path / "out" / "index.html"
    browser = Browser()
    try:
        with live_report(live, poll_seconds=0.05):
            while live.builds == 0:
                time.sleep(0.05)
            browser.open(page)
            wait_rendered(browser, len(re.findall(r'data-figure="', page.read_text())))
            text = browser.evaluate("document.body.innerText")
            assert "Running trials" in text and "1 COMPLETE, 0 PRUNED, 0 FAILED, 1 RUNNING" in text
            start(store, "trial-0001", 1, "COMPLETE")
            write_epochs(store, "live", "trial-0001", 32.0, 3)
            builds = live.builds
            deadline = time.time() + 20
            while live.builds == builds and time.time() < deadline:
                time.sleep(0.05)
        browser.open(page)
        state = wait_rendered(browser, len(re.findall(r'data-figure="', page.read_text())))
        text = browser.evaluate("document.body.innerText")
        assert "2 COMPLETE, 0 PRUNED, 0 FAILED, 0 RUNNING" in text and "Running trials" not in text
        assert browser.errors() == [] and all(s["svg"] and s["drawn"] for s in state)
    finally:
        browser.close()


def test_study_run_report_flags_and_the_hook_around_a_run(tmp_path, monkeypatch, capsys):
    import shutil

    from harma.cli import build_parser
    from harma.report.live import live_report_for
    from harma.study.columns import study_columns
    from harma.study.parse import load_study

    repo = Path(__file__).resolve().parents[2]
    (tmp_path / "studies").mkdir()
    shutil.copy(repo / "studies" / "smoke.yaml", tmp_path / "studies" / "smoke.yaml")
    monkeypatch.chdir(tmp_path)
    parser = build_parser()
    args = parser.parse_args(["study", "run", "studies/smoke.yaml", "--report"])
    assert (args.report, args.report_every) == ("", 30.0)
    args = parser.parse_args(["study", "resume", "smoke", "--report", "live-out", "--report-every", "5"])
    assert (args.report, args.report_every) == ("live-out", 5.0)
    assert parser.parse_args(["study", "run", "studies/smoke.yaml"]).report is None
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["study", "run", "studies/smoke.yaml", "--report-every", "-1"])
    assert exc.value.code == 2 and "--report-every" in capsys.readouterr().err
    with live_report_for("studies/smoke.yaml", "", 0.0):  # what `harma study run --report` does
        store = ResultsStore(tmp_path / "results")
        store.write_trial(trial_record("smoke", "trial-0000", "search", "COMPLETE", 0, VAL, VAL, seed=3407,
                                       stop_epoch=4, best_epoch=4, params={"optim.lr": 0.001, "train.seed": 3407}),
                          study_columns(load_study("studies/smoke.yaml")))
    html = (tmp_path / "reports" / "smoke" / "index.html").read_text()
    assert "harma train --config synthetic-tiny --set optim.lr=0.001 train.epochs=4 train.seed=3407" in html
    assert "Live report: built at" in html and "when this run of the study ended" in html
    assert live_report_for("studies/smoke.yaml", None).__class__.__name__ == "nullcontext"
