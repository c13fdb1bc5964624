"""Screenshots of TensorBoard showing a study's runs, for the README (regenerated on purpose, never by the tests).

Starts `tensorboard --logdir DIR --host 127.0.0.1` on a free port (offline: TensorBoard serves its own front end),
opens its HParams table, its parallel-coordinates view and its time series in headless Chromium (harma.report.browser), and saves PNGs:

    PYTHONPATH=$PWD python benchmarks/screenshot_tensorboard.py results/tensorboard/smoke --out reports/screenshots
"""
from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from harma.report.browser import Browser

WIDTH, HEIGHT = 1600, 800
VIEWS = {"tensorboard-hparams.png": ("#hparams", None),
         "tensorboard-parallel.png": ("#hparams", "PARALLEL COORDINATES VIEW"),
         "tensorboard-scalars.png": ("#timeseries", None)}
CLICK = ("(() => {{ const all = []; const walk = r => r.querySelectorAll('*').forEach(e => {{ all.push(e); "
         "if (e.shadowRoot) walk(e.shadowRoot); }}); walk(document); const hits = all.filter(e => "
         "e.textContent.trim().toUpperCase() === {!r}); hits[hits.length - 1].click(); return hits.length; }})()")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(logdir: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", logdir, "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            urllib.request.urlopen(f"{url}/data/runs", timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("tensorboard did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir")
    parser.add_argument("--out", default="reports/screenshots")
    parser.add_argument("--settle", type=float, default=8.0, help="seconds to let TensorBoard draw")
    args = parser.parse_args()
    proc, url = start(args.logdir)
    browser = Browser(webgl=True)
    try:
        for i, (name, (view, tab)) in enumerate(VIEWS.items()):
            browser.open_url(f"{url}/?view={i}{view}", width=WIDTH, height=HEIGHT)
            time.sleep(args.settle)
            if tab:
                browser.evaluate(CLICK.format(tab))
                time.sleep(args.settle)
            browser.screenshot(Path(args.out) / name, max_height=HEIGHT, width=WIDTH)
            print(f"wrote {Path(args.out) / name}")
    finally:
        browser.close()
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
