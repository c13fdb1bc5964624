"""The built pages in headless Chromium (offline, fresh profile, WebGL and 3D APIs disabled): no console
errors or uncaught exceptions, every figure's div drawn by Plotly as SVG with its data and no canvas, and a
full-page screenshot written to a temporary folder (never into the checkout)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from harma.report.browser import CHROMIUM, Browser, screenshot_page, wait_rendered

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"{CHROMIUM} not found: install Debian's chromium to run the browser tests"),
]


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


@pytest.mark.parametrize("name", ["abl", "srch", "rep", "index"])
def test_page_renders_as_svg_without_webgl_or_errors(browser, built_pages, name):
    path = built_pages[name]
    expected = re.findall(r'data-figure="([^"]+)"', path.read_text())
    browser.open(path)
    state = wait_rendered(browser, len(expected))
    assert browser.errors() == []
    assert browser.evaluate("(() => { const c = document.createElement('canvas');"
                            " return !!(c.getContext('webgl') || c.getContext('webgl2')); })()") is False
    assert [s["id"] for s in state] == expected
    for s in state:
        assert s["divId"] == s["id"] and s["svg"], s
        assert s["traces"] > 0 and s["points"] > 0 and s["drawn"] > 0 and s["canvases"] == 0, s
        assert not any(t.endswith("gl") or t == "parcoords" for t in s["types"]), s
    assert browser.evaluate("document.querySelectorAll('table').length") >= 1


def test_screenshot_goes_where_asked(built_pages, tmp_path):
    png = screenshot_page(built_pages["abl"], tmp_path / "shots" / "ablation.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
