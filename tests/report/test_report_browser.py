"""The built pages in headless Chromium (offline, fresh profile, WebGL and 3D APIs disabled): no console
errors or uncaught exceptions, every figure's div drawn by Plotly as SVG with its data and no canvas, and a
full-page screenshot written to a temporary folder (never into the checkout); and, served on 127.0.0.1 with
plotly.js held back, each page paints its text, tables and banners first and draws its figures once plotly.js
arrives."""
from __future__ import annotations

import re
import time
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


# ------------------------------------------------------------------------------ readable before plotly.js

PLOTLY_DELAY = 2.0        # seconds the test server holds plotly.js back


def bannered_page(folder: Path) -> Path:
    """A page with a banner, text, a table and a figure, built by harma.report.html into `folder`."""
    import pandas as pd
    import plotly.graph_objects as go

    from harma.report.html import Page, write_page

    page = Page("harma study: bannered", ["Kind: ablation"], "footer")
    page.banner("2 seeds in arm harma: intervals need 3")
    section = page.section("Results")
    section.text("Mean over seeds per arm.")
    section.table(pd.DataFrame({"arm": ["harma"], "mR": ["31.25 ± 0.84"]}), text_columns=("arm",))
    section.figure("bannered-fig", go.Figure(go.Bar(x=["harma"], y=[31.25])), "mR per arm.", "fig.csv")
    return write_page(page, folder)


@pytest.fixture(scope="module")
def slow_plotly(built_pages):
    """The reports folder (with a bannered page) served on 127.0.0.1, plotly.js answered only after PLOTLY_DELAY
    seconds."""
    import functools
    import http.server
    import threading

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/favicon.ico":                   # a browser asks for it over http
                self.send_response(204)
                self.end_headers()
                return
            if "/assets/plotly-" in self.path:
                time.sleep(PLOTLY_DELAY)
            try:
                super().do_GET()
            except (BrokenPipeError, ConnectionResetError):   # the browser went away first
                pass

        def log_message(self, *args):
            pass

    root = built_pages["srch"].parent.parent
    pages = {"abl": built_pages["abl"], "bannered": bannered_page(root / "bannered")}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", pages
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("name", ["abl", "bannered"])
def test_text_tables_and_banners_paint_before_plotly_arrives(browser, slow_plotly, name, record_property):
    """First contentful paint comes before plotly.js arrives, and while it is held back the page's text, tables
    and banners are there and no figure is drawn; once it arrives, every figure draws."""
    url, pages = slow_plotly
    html = pages[name].read_text()
    expected = re.findall(r'data-figure="([^"]+)"', html)
    browser.open_url(f"{url}/{name}/index.html", wait_load=False)
    time.sleep(PLOTLY_DELAY / 2)
    held = browser.evaluate("({plotly: typeof Plotly, text: document.body ? document.body.innerText : '',"
                            " tables: document.querySelectorAll('table').length,"
                            " banners: document.querySelectorAll('div.banner').length,"
                            " drawn: document.querySelectorAll('.js-plotly-plot').length,"
                            " fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime})")
    assert held["plotly"] == "undefined" and held["drawn"] == 0 and held.get("fcp") is not None
    assert f"harma study: {name}" in held["text"] and held["tables"] == html.count("<table")
    assert held["banners"] == html.count('class="banner"') and (name != "bannered" or held["banners"] == 1)
    assert name != "bannered" or "2 seeds in arm harma: intervals need 3" in held["text"]
    state = wait_rendered(browser, len(expected))
    assert [s["id"] for s in state] == expected and all(s["svg"] and s["drawn"] for s in state)
    arrived = browser.evaluate("performance.getEntriesByType('resource').filter(r => r.name.includes("
                               "'/assets/plotly-'))[0].responseEnd")
    assert held["fcp"] < arrived - 1000 * PLOTLY_DELAY / 2, (held["fcp"], arrived)
    assert browser.errors() == []
    record_property("first_contentful_paint_ms", round(held["fcp"]))
    record_property("plotly_arrived_ms", round(arrived))
    print(f"{name}: first contentful paint {held['fcp']:.0f} ms, plotly.js arrived {arrived:.0f} ms")
