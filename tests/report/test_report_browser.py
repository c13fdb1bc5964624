"""The built pages in headless Chromium (offline, fresh profile): no console errors or uncaught exceptions,
every figure's div rendered by Plotly with its data, and a full-page screenshot of each page written to
reports/screenshots/ for the README."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from cdp import CHROMIUM, Browser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"{CHROMIUM} not found: install Debian's chromium to run the browser tests"),
]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "reports" / "screenshots"
SHOT_NAMES = {"abl": "ablation", "srch": "search", "rep": "replicate", "index": "index"}
RENDER_CHECK = """
Array.from(document.querySelectorAll('figure.harma-figure')).map(f => {
  const gd = f.querySelector('.js-plotly-plot');
  const svg = gd && gd.querySelector('.plot-container svg.main-svg');
  const points = gd && gd.data ? gd.data.reduce((n, t) => n + ((t.x || t.dimensions || t.y || []).length), 0) : 0;
  return {id: f.dataset.figure, divId: gd ? gd.id : null, svg: !!svg, traces: gd && gd.data ? gd.data.length : 0,
          points: points, drawn: gd ? gd.querySelectorAll('.trace, .bars, .parcoords').length : 0};
})
"""


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


def _rendered(browser: Browser, expected: int, timeout: float = 30.0) -> list[dict]:
    deadline = time.time() + timeout
    while True:
        state = browser.evaluate(RENDER_CHECK)
        if (len(state) == expected and all(s["svg"] and s["drawn"] for s in state)) or time.time() > deadline:
            return state
        time.sleep(0.25)


@pytest.mark.parametrize("name", ["abl", "srch", "rep", "index"])
def test_page_renders_without_errors(browser, built_pages, name):
    path = built_pages[name]
    expected = re.findall(r'data-figure="([^"]+)"', path.read_text())
    browser.open(path)
    state = _rendered(browser, len(expected))
    assert browser.errors() == []
    assert [s["id"] for s in state] == expected
    for s in state:
        assert s["divId"] == s["id"] and s["svg"], s
        assert s["traces"] > 0 and s["points"] > 0 and s["drawn"] > 0, s
    assert browser.evaluate("document.querySelectorAll('table').length") >= 1
    browser.screenshot(SCREENSHOTS / f"{SHOT_NAMES[name]}.png")
    assert (SCREENSHOTS / f"{SHOT_NAMES[name]}.png").stat().st_size > 10_000
