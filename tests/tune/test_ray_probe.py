"""`--address` at an open port that is not Ray is one ClusterError within seconds (a silent server, an HTTP/1
server, a server that hangs up), while a gRPC server (what Ray's GCS and Ray Client ports are) passes.  The
servers live in this process on 127.0.0.1; nothing here starts Ray."""
from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from harma.tune.cluster import ClusterError
from harma.tune.ray_probe import EMPTY_SETTINGS, H2_PREFACE, check_is_ray, is_settings_frame

LIMIT_S = 15


def _tcp_server(on_connect):
    """A one-connection server on 127.0.0.1 whose thread calls `on_connect(conn)`; yields its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve():
        try:
            conn, _ = server.accept()
        except OSError:   # closed at teardown before anyone connected
            return
        on_connect(conn)

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def silent_port():
    """Listens and accepts, then says nothing (the connection stays open until teardown)."""
    held = []
    yield from _tcp_server(held.append)
    for conn in held:
        conn.close()


@pytest.fixture
def hangup_port():
    """Accepts and closes the connection at once."""
    yield from _tcp_server(lambda conn: conn.close())


def _answer_http11_400(conn) -> None:
    with conn:
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.end_headers()


@pytest.fixture
def http1_port():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def http11_port():
    """Answers anything with an HTTP/1.1 400, as nginx or a dashboard does to an HTTP/2 preface."""
    yield from _tcp_server(_answer_http11_400)


def probe_error(address: str, timeout: float = 5.0) -> tuple[str, float]:
    start = time.monotonic()
    with pytest.raises(ClusterError) as err:
        check_is_ray(address, timeout=timeout)
    return str(err.value), time.monotonic() - start


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_a_silent_port_is_not_ray(silent_port, scheme):
    address = f"{scheme}127.0.0.1:{silent_port}"
    message, elapsed = probe_error(address, timeout=2.0)
    assert elapsed < LIMIT_S
    assert message.startswith(f"--address {address}: not a Ray cluster:") and "sent nothing within 2 s" in message
    assert ("Ray Client port" if scheme else "GCS port") in message and "\n" not in message


def test_an_http1_server_is_not_ray(http11_port):
    message, elapsed = probe_error(f"127.0.0.1:{http11_port}")
    assert elapsed < LIMIT_S and "does not speak gRPC (it answered 'HTTP/1.1 400 Bad Request')" in message, message


def test_pythons_http_server_is_not_ray(http1_port):
    message, elapsed = probe_error(f"127.0.0.1:{http1_port}")
    assert elapsed < LIMIT_S and "does not speak gRPC (it answered" in message, message


def test_a_server_that_hangs_up_is_not_ray(hangup_port):
    message, _ = probe_error(f"127.0.0.1:{hangup_port}")
    assert "closed the connection" in message or "reading failed" in message, message


def test_a_closed_port_cannot_be_reached():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    message, _ = probe_error(f"127.0.0.1:{port}")
    assert "cannot reach a Ray cluster there" in message


def test_a_grpc_server_passes():
    grpc = pytest.importorskip("grpc")
    from concurrent import futures

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        check_is_ray(f"127.0.0.1:{port}")
        check_is_ray(f"ray://127.0.0.1:{port}")
    finally:
        server.stop(0)


def test_auto_and_tls_are_left_to_ray(silent_port, monkeypatch):
    check_is_ray("auto")
    monkeypatch.setenv("RAY_USE_TLS", "1")
    check_is_ray(f"127.0.0.1:{silent_port}", timeout=1.0)   # TLS speaks first: reachability only


def test_malformed_address():
    with pytest.raises(ClusterError, match="expected auto, HOST:PORT or ray://HOST:PORT"):
        check_is_ray("127.0.0.1:port")


def test_frame_headers():
    assert H2_PREFACE.startswith(b"PRI * HTTP/2.0") and EMPTY_SETTINGS == bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
    assert is_settings_frame(bytes([0, 0, 6, 4, 0, 0, 0, 0, 0]))
    assert is_settings_frame(bytes([0, 0, 0, 4, 1, 0, 0, 0, 0]))          # an ACK
    assert not is_settings_frame(b"HTTP/1.1 ")
    assert not is_settings_frame(bytes([0, 0, 6, 4, 0, 0, 0, 0, 1]))      # not stream 0
    assert not is_settings_frame(bytes([0, 0, 5, 4, 0, 0, 0, 0, 0]))      # not a multiple of 6
    assert not is_settings_frame(bytes([0, 0, 0, 4]))


def test_study_run_with_a_silent_address_exits_2_before_ray(silent_port, tmp_path, monkeypatch, capsys):
    """The CLI: one line, exit 2, within LIMIT_S, and neither the runner nor Ray is reached."""
    from pathlib import Path

    from harma.cli import main
    from harma.tune import runner

    study = Path(__file__).resolve().parents[2] / "studies" / "smoke.yaml"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(runner, "run_study", lambda *a, **k: pytest.fail("run_study was called"))
    address = f"127.0.0.1:{silent_port}"
    start = time.monotonic()
    assert main(["study", "run", str(study), "--address", address]) == 2
    assert time.monotonic() - start < LIMIT_S
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"harma: error: --address {address}: not a Ray cluster"), err
    assert not (tmp_path / "results").exists()


def test_ray_address_env_is_probed_too(silent_port, monkeypatch):
    from harma.tune.preflight import check_address

    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{silent_port}")
    monkeypatch.setattr("harma.tune.ray_probe.DEFAULT_TIMEOUT", 1.0)
    with pytest.raises(ClusterError, match="not a Ray cluster"):
        check_address(None)
