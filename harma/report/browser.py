"""A tiny Chrome DevTools Protocol client: start headless Chromium offline with a fresh profile (WebGL off
by default, so pages must render as SVG), open a page, collect console errors and uncaught exceptions,
evaluate JavaScript in the page, and take a full-page screenshot (written by harma.atomic).  Used by `harma
report --screenshot`, the browser tests and benchmarks/bench_report_pages.py.  It speaks the WebSocket
protocol itself (stdlib only: a handshake, masked text frames out, unmasked frames in), so it needs no extra
Python package.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from harma.atomic import write_bytes_atomic

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--remote-debugging-port=0"]
NO_WEBGL = ["--disable-webgl", "--disable-3d-apis"]


class WebSocket:
    """Just enough of RFC 6455 for CDP: text frames, no extensions."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        assert url.startswith("ws://")
        hostport, path = url[5:].split("/", 1)
        host, port = hostport.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"websocket handshake failed: {head[:200]!r}")

    def send(self, text: str) -> None:
        data = text.encode()
        header = bytearray([0x81])
        n = len(data)
        if n < 126:
            header.append(0x80 | n)
        elif n < 2**16:
            header.append(0x80 | 126)
            header += struct.pack(">H", n)
        else:
            header.append(0x80 | 127)
            header += struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(bytes(header) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("websocket closed")
            buf += chunk
        return bytes(buf)

    def recv(self) -> str:
        message = bytearray()
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            payload = self._exact(n)
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise ConnectionError("websocket closed by browser")
            if opcode in (0x9, 0xA):  # ping / pong
                continue
            message += payload
            if b0 & 0x80:
                return message.decode()

    def close(self) -> None:
        self.sock.close()


class Browser:
    """Headless Chromium with one page target driven over CDP."""

    def __init__(self, webgl: bool = False, executable: str = CHROMIUM) -> None:
        if not Path(executable).exists():
            raise FileNotFoundError(f"{executable} not found: install Debian's chromium (apt-get install chromium)")
        self.profile = tempfile.mkdtemp(prefix="harma-chromium-")
        flags = FLAGS if webgl else [*FLAGS, *NO_WEBGL]
        self.proc = subprocess.Popen([executable, *flags, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.time() + 60
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if time.time() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not start (no DevToolsActivePort)")
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30))
        page = next(t for t in targets if t["type"] == "page")
        self.ws = WebSocket(page["webSocketDebuggerUrl"])
        self.next_id = 0
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, method: str, timeout: float = 60.0) -> dict:
        deadline = time.time() + timeout
        for ev in self.events:
            if ev["method"] == method:
                return ev
        while time.time() < deadline:
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    return msg
        raise TimeoutError(method)

    def open(self, path: Path, width: int = 1280, height: int = 900, wait_load: bool = True) -> None:
        self.open_url(Path(path).resolve().as_uri(), width, height, wait_load)

    def open_url(self, url: str, width: int = 1280, height: int = 900, wait_load: bool = True) -> None:
        """Navigate to `url` (a file:// page, or one a test serves on 127.0.0.1)."""
        self.events.clear()
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)
        self.call("Page.navigate", url=url)
        if wait_load:
            self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors, failed asserts, uncaught exceptions and error log entries seen so far."""
        self.call("Runtime.evaluate", expression="1")  # flush pending events
        out = []
        for ev in self.events:
            p = ev.get("params", {})
            if ev["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
            elif ev["method"] == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append("exception: " + d.get("exception", {}).get("description", d.get("text", "")))
            elif ev["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(f"log ({p['entry']['source']}): {p['entry']['text']}")
        return out

    def screenshot(self, out: Path, max_height: int = 8000, width: int = 1280) -> None:
        metrics = self.call("Page.getLayoutMetrics")
        height = min(int(metrics["cssContentSize"]["height"]) + 1, max_height)
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)
        time.sleep(0.5)
        shot = self.call("Page.captureScreenshot", format="png")
        write_bytes_atomic(out, base64.b64decode(shot["data"]), shared=True)

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            try:
                self.call("Browser.close")
            except Exception:
                pass
            self.ws.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


# One entry per report figure: its div, whether Plotly drew an SVG with traces, and any WebGL canvas in it.
RENDER_CHECK = """
Array.from(document.querySelectorAll('figure.harma-figure')).map(f => {
  const gd = f.querySelector('.js-plotly-plot');
  const svg = gd && gd.querySelector('.plot-container svg.main-svg');
  const points = gd && gd.data ? gd.data.reduce((n, t) => n + ((t.x || t.y || []).length), 0) : 0;
  return {id: f.dataset.figure, divId: gd ? gd.id : null, svg: !!svg, traces: gd && gd.data ? gd.data.length : 0,
          points: points, drawn: gd ? gd.querySelectorAll('.trace, .bars').length : 0,
          canvases: f.querySelectorAll('canvas').length,
          types: gd && gd.data ? gd.data.map(t => t.type || 'scatter') : []};
})
"""


def wait_rendered(browser: Browser, expected: int, timeout: float = 30.0, interval: float = 0.05) -> list[dict]:
    """Poll until `expected` figures are drawn as SVG with traces (or the timeout passes); their states."""
    deadline = time.time() + timeout
    while True:
        state = browser.evaluate(RENDER_CHECK)
        if (len(state) == expected and all(s["svg"] and s["drawn"] for s in state)) or time.time() > deadline:
            return state
        time.sleep(interval)


def screenshot_page(page: Path, png: Path) -> Path:
    """Open a report page in headless Chromium (offline, WebGL off), wait for its figures, save a full-page
    PNG at `png`; raise RuntimeError if the page logs an error or a figure does not render."""
    import re

    expected = len(re.findall(r'data-figure="', Path(page).read_text(encoding="utf-8")))
    browser = Browser()
    try:
        browser.open(page)
        state = wait_rendered(browser, expected)
        bad = [s["id"] for s in state if not (s["svg"] and s["drawn"])]
        errors = browser.errors()
        if errors or bad or len(state) != expected:
            raise RuntimeError(f"{page}: did not render cleanly (errors: {errors}; figures not drawn: {bad})")
        browser.screenshot(png)
    finally:
        browser.close()
    return Path(png)
