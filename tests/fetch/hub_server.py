"""A loopback stand-in for the Hugging Face Hub's file endpoint, started by the tests (127.0.0.1, an ephemeral
port), so `hf_hub_download` runs its real code against it with HF_ENDPOINT pointed here.

It answers what `hf_hub_download` asks (huggingface_hub 2.x, file_download.py): `HEAD` then `GET` on
`/{owner}/{name}/resolve/{revision}/{path}` for model repos and `/datasets/{owner}/{name}/resolve/...` for data
sets.  A found file is answered with `X-Repo-Commit` (the commit the revision resolves to: a 40-hex revision is
its own commit, `main` is `FakeHub.commit`), `ETag` (the content's sha256, quoted, as the Hub sends for LFS
files), `Content-Length` and `Accept-Ranges`; a `GET` with `Range: bytes=N-` gets 206 and the rest.  Misses
carry the `X-Error-Code` the Hub sends (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`), which
huggingface_hub turns into its typed errors.  Unlike the real Hub it serves large files itself instead of
redirecting to a CDN with `X-Linked-Etag` / `X-Linked-Size`.  Faults: `cut(path, [n, ...])` makes the next GETs
of a file send their full `Content-Length` but only n body bytes, then drop the connection.  Every request is
logged (method, repo, revision, file, Range header).
"""
from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

COMMIT_RE = re.compile(r"[0-9a-f]{40}")
PATH_RE = re.compile(r"^/(?:(?P<kind>datasets)/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")


@dataclass(frozen=True)
class Logged:
    method: str
    repo_type: str
    repo: str
    revision: str
    file: str
    range: str | None


class FakeHub:
    commit = "0123456789abcdef0123456789abcdef01234567"
    branches = ("main",)

    def __init__(self) -> None:
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.requests: list[Logged] = []
        self.cuts: dict[tuple[str, str, str], list[int]] = {}
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, repo: str, path: str, data: bytes, repo_type: str = "model") -> str:
        self.files[(repo_type, repo, path)] = data
        return hashlib.sha256(data).hexdigest()

    def cut(self, repo: str, path: str, sizes: list[int], repo_type: str = "model") -> None:
        self.cuts[(repo_type, repo, path)] = list(sizes)

    def gets(self, file: str) -> list[Logged]:
        return [r for r in self.requests if r.method == "GET" and r.file == file]

    def start(self) -> "FakeHub":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def resolve(self, repo_type: str, repo: str, revision: str, file: str) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for a file request, before any Range."""
        if not any(k[0] == repo_type and k[1] == repo for k in self.files):
            return 404, {"X-Error-Code": "RepoNotFound"}, b""
        commit = revision if COMMIT_RE.fullmatch(revision) else self.commit if revision in self.branches else None
        if commit is None:
            return 404, {"X-Error-Code": "RevisionNotFound"}, b""
        data = self.files.get((repo_type, repo, file))
        if data is None:
            return 404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}, b""
        return 200, {"X-Repo-Commit": commit, "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                     "Accept-Ranges": "bytes"}, data


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def _answer(self, method: str) -> None:
            m = PATH_RE.match(self.path.split("?", 1)[0])
            if m is None:
                self._send(404, {}, b"", method)
                return
            repo_type = "dataset" if m["kind"] else "model"
            revision, file = unquote(m["rev"]), unquote(m["file"])
            with hub._lock:
                hub.requests.append(Logged(method, repo_type, m["repo"], revision, file, self.headers.get("Range")))
            status, headers, body = hub.resolve(repo_type, m["repo"], revision, file)
            start = _range_start(self.headers.get("Range")) if status == 200 and method == "GET" else 0
            if start:
                headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
                status, body = 206, body[start:]
            cut = None
            if method == "GET" and status in (200, 206):
                with hub._lock:
                    queue = hub.cuts.get((repo_type, m["repo"], file))
                    cut = queue.pop(0) if queue else None
            self._send(status, headers, body, method, cut)

        def _send(self, status: int, headers: dict[str, str], body: bytes, method: str,
                  cut: int | None = None) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if method == "GET":
                self.wfile.write(body if cut is None else body[:cut])
                self.wfile.flush()
            if cut is not None:
                self.close_connection = True
                self.connection.shutdown(2)

        def do_HEAD(self) -> None:
            self._answer("HEAD")

        def do_GET(self) -> None:
            self._answer("GET")

    return Handler


def _range_start(header: str | None) -> int:
    m = re.fullmatch(r"bytes=(\d+)-", header or "")
    return int(m.group(1)) if m else 0
