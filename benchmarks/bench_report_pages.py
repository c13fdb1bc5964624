"""Size and first render of report pages in headless Chromium, shared plotly.js against a self-contained page.

Pages come from a results root (`--results ROOT`, every study in it, with study files from `--studies DIR`
when present) or, by default, from the report tests' fake studies (an ablation of 3 arms x 3 seeds, a
10-trial search, a replicate) written to a temporary folder.  Each page is built twice, with plotly.js shared
from `assets/` (the default) and inlined (`--self-contained`).  First render is the wall time from
`Page.navigate` until every figure of the page has drawn its SVG traces (polled every 10 ms over CDP), offline,
WebGL off.  Cold is the page opened first in a fresh Chromium profile (nothing cached); "after another page"
opens another report page of the same folder and mode first, in a fresh profile, then this one (as a reader
going from one report to the next, where a shared plotly.js comes from the browser's caches and an inlined
one does not); the table gives the median and the range over `--rounds`.  Browser start-up is not counted.  A first row times a page that loads the shared
plotly.js and nothing else, the floor under every page.  `--screenshots DIR` also saves a full-page PNG of
each page (shared-asset build) there, named after the study kind, for the README.
Run: `python benchmarks/bench_report_pages.py [--results ROOT --studies studies] [--rounds 5] [--screenshots DIR]`.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harma.report import build_index, build_study_report
from harma.report.browser import Browser, screenshot_page, wait_rendered
from harma.report.html import plotly_asset_name, write_plotly_asset
from harma.report.spec import find_spec
from harma.results.store import ResultsStore

REPO = Path(__file__).resolve().parents[1]
SHOT_NAMES = {"search": "search", "ablation": "ablation", "replicate": "replicate"}


def fake_store(folder: Path) -> tuple[ResultsStore, str]:
    sys.path.insert(0, str(REPO / "tests" / "report"))
    from fake_studies import write_all

    storage = f"sqlite:///{folder / 'optuna.db'}"
    return write_all(folder / "results", optuna_db=storage), storage


def plotly_only_page(folder: Path) -> Path:
    """A page that loads the shared plotly.js and nothing else: the floor under every page's first render."""
    asset = write_plotly_asset(folder / "assets")
    page = folder / "plotly-only" / "index.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(f'<!DOCTYPE html><html><head><script src="../assets/{asset.name}"></script></head><body>'
                    '<script>window.harmaDone = true;</script></body></html>', encoding="utf-8")
    return page


def _load(browser: Browser, page: Path, expected: int) -> float:
    start = time.perf_counter()
    browser.open(page, wait_load=False)
    if expected == 0:
        while not browser.evaluate("window.harmaDone === true"):
            time.sleep(0.01)
        state: list[dict] = []
    else:
        state = wait_rendered(browser, expected, timeout=60.0, interval=0.01)
    elapsed = time.perf_counter() - start
    if browser.errors() or not all(s["svg"] and s["drawn"] for s in state) or len(state) != expected:
        raise RuntimeError(f"{page}: did not render cleanly: {browser.errors()}")
    return elapsed


def _figures(page: Path) -> int:
    return len(re.findall(r'data-figure="', page.read_text(encoding="utf-8")))


def first_render(page: Path, rounds: int, previous: Path | None = None) -> tuple[list[float], list[float]]:
    """(cold, next) seconds per round, each round in a fresh browser profile: cold is the page opened first;
    next is the page opened right after `previous` (another page of the same report folder) in the same
    browser, as when a reader goes from one report to the next; [] without `previous`."""
    cold, warm = [], []
    for _ in range(rounds):
        browser = Browser()
        try:
            cold.append(_load(browser, page, _figures(page)))
        finally:
            browser.close()
        if previous is None:
            continue
        browser = Browser()
        try:
            _load(browser, previous, _figures(previous))
            warm.append(_load(browser, page, _figures(page)))
        finally:
            browser.close()
    return cold, warm


def _stat(times: list[float]) -> str:
    if not times:
        return "–"
    return f"{statistics.median(times):.2f} s ({min(times):.2f}–{max(times):.2f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", help="results root to read (default: the fake studies of the report tests)")
    ap.add_argument("--studies", default="studies", help="folder of study files (with --results)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--screenshots", help="save a full-page PNG of each page here")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="harma-bench-report-"))
    if args.results:
        store, storage = ResultsStore(args.results), None
    else:
        store, storage = fake_store(tmp)
    rows = []
    cold, warm = first_render(plotly_only_page(tmp / "shared"), args.rounds)
    rows.append(("(none)", "plotly.js only", "shared", 0, cold, warm))
    print(f"plotly.js alone: first render median {statistics.median(cold):.3f} s", flush=True)
    pages: dict[tuple[str, str], Path] = {}
    kinds = {}
    studies = store.studies()
    for study in studies:
        spec_file = Path(args.studies) / f"{study}.yaml"
        spec = find_spec(study, spec_file) if args.results and spec_file.is_file() else None
        kinds[study] = str(store.read_trials(study)["kind"].iloc[0])
        for mode in ("shared", "self-contained"):
            pages[study, mode] = build_study_report(
                store, study, tmp / mode / study, optuna_storage_url=storage, spec=spec,
                self_contained=mode == "self-contained", min_importance_trials=None if args.results else 5)
    for i, study in enumerate(studies):
        kind = kinds[study]
        for mode in ("shared", "self-contained"):
            page = pages[study, mode]
            other = pages[studies[i - 1], mode] if len(studies) > 1 else None
            cold, warm = first_render(page, args.rounds, other)
            rows.append((study, kind, mode, page.stat().st_size, cold, warm))
            print(f"{study:18s} {mode:15s} {page.stat().st_size / 1e3:8.1f} kB  first render median "
                  f"{statistics.median(cold):.3f} s cold, {_stat(warm)} after another page", flush=True)
            if args.screenshots and mode == "shared":
                name = study if args.results else SHOT_NAMES[kind]
                screenshot_page(page, Path(args.screenshots) / f"{name}.png")
    asset = tmp / "shared" / "assets" / plotly_asset_name()
    print(f"shared asset {asset.name}: {asset.stat().st_size / 1e3:.1f} kB (once per report folder)")
    if args.screenshots:
        index = build_index(store, tmp / "shared")
        screenshot_page(index, Path(args.screenshots) / "index.png")
    print("\n| study | kind | plotly.js | page size | first render, cold: median (range) | after another page "
          "of the folder: median (range) |\n|---|---|---|---:|---:|---:|")
    for study, kind, mode, size, cold, warm in rows:
        print(f"| {study} | {kind} | {mode} | {size / 1e3:,.1f} kB | {_stat(cold)} | {_stat(warm)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
