"""Is there a Ray cluster at `--address`?  Asked over one TCP connection in seconds, before Ray is contacted.

A port that accepts connections but is not Ray (a web server, a database, a silent service) makes `ray.init`
retry for minutes.  Both addresses Ray takes speak gRPC, which runs over HTTP/2: the GCS port of a head node
(`HOST:6379`) and the Ray Client server (`ray://HOST:10001`).  An HTTP/2 server answers the client connection
preface (`PRI * HTTP/2.0...` followed by a SETTINGS frame) with a SETTINGS frame of its own, so
`check_is_ray(address, timeout)` sends the preface and expects a SETTINGS frame header back within `timeout`
seconds; silence, a closed connection or anything else (`HTTP/1.1 400 ...`) is one ClusterError naming the
address and what came back.  With RAY_USE_TLS set the port speaks TLS first, so only reachability is checked.
A gRPC server that is not Ray would pass; this catches the wrong-port mistake, not impostors.
"""
from __future__ import annotations

import os
import socket
import struct
import time

from harma.tune.cluster import ClusterError, _split_address

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = struct.pack(">I", 0)[1:] + bytes([0x4, 0x0]) + struct.pack(">I", 0)   # length 0, SETTINGS
FRAME_HEADER = 9
SETTINGS = 0x4
DEFAULT_TIMEOUT = 5.0


def is_settings_frame(header: bytes) -> bool:
    """A 9-byte HTTP/2 frame header of a SETTINGS frame on stream 0 with a length that is a multiple of 6."""
    if len(header) != FRAME_HEADER:
        return False
    length = int.from_bytes(header[:3], "big")
    stream = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
    return header[3] == SETTINGS and stream == 0 and length % 6 == 0


def _read_reply(sock: socket.socket, deadline: float) -> tuple[bytes, str]:
    """Up to FRAME_HEADER bytes the server sends before the deadline, and how the reading ended."""
    got = b""
    while len(got) < FRAME_HEADER:
        left = deadline - time.monotonic()
        if left <= 0:
            return got, "timeout"
        sock.settimeout(left)
        try:
            chunk = sock.recv(FRAME_HEADER - len(got))
        except socket.timeout:
            return got, "timeout"
        except OSError as exc:
            return got, f"error: {exc}"
        if not chunk:
            return got, "closed"
        got += chunk
    return got, "ok"


def _more(sock: socket.socket, wait: float, size: int = 64) -> bytes:
    """A little more of what a non-Ray server sent, to quote in the error (nothing after `wait` seconds)."""
    if wait <= 0:
        return b""
    sock.settimeout(wait)
    try:
        return sock.recv(size)
    except OSError:
        return b""


def _describe(reply: bytes, ended: str, timeout: float) -> str:
    if reply:
        text = (reply.decode("latin-1").splitlines() or [""])[0][:60]
        return f"it answered {text!r}"
    if ended == "timeout":
        return f"it sent nothing within {timeout:g} s"
    if ended == "closed":
        return "it closed the connection without a word"
    return f"reading failed ({ended[len('error: '):]})"


def _tls_enabled() -> bool:
    return os.environ.get("RAY_USE_TLS", "0").strip().lower() in ("1", "true")


def check_is_ray(address: str, timeout: float | None = None) -> None:
    """ClusterError unless `address` (`HOST:PORT`, `ray://HOST:PORT`) answers as a gRPC (HTTP/2) server
    within about `timeout` seconds (default DEFAULT_TIMEOUT); `auto` is left to Ray."""
    if address == "auto":
        return
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    host, port = _split_address(address)
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise ClusterError(f"--address {address}: cannot reach a Ray cluster there ({exc}); is it running, "
                           f"and is the port open to this machine?") from None
    with sock:
        if _tls_enabled():
            return
        try:
            sock.sendall(H2_PREFACE + EMPTY_SETTINGS)
        except OSError as exc:
            raise ClusterError(f"--address {address}: not a Ray cluster: the connection failed ({exc})") from None
        reply, ended = _read_reply(sock, deadline)
        if ended == "ok" and is_settings_frame(reply):
            return
        reply += _more(sock, min(0.5, max(0.0, deadline - time.monotonic())))
    port_hint = "the Ray Client port (default 10001)" if address.startswith("ray://") else \
        "the GCS port of the head node (default 6379)"
    raise ClusterError(f"--address {address}: not a Ray cluster: {host}:{port} accepts connections but does "
                       f"not speak gRPC ({_describe(reply, ended, timeout)}); expected {port_hint}")
