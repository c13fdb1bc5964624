"""A wrong `--address` is one clear error, fast, and starts no Ray: `harma study run` against a closed port on
127.0.0.1 and against malformed addresses exits with status 2 and one `harma: error:` line naming the address.
Also: `connect()`'s loopback client defaults (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, RAY_AUTH_MODE=token) apply
only to 127.0.0.1 / localhost and never override what the user set.  Nothing here starts Ray or leaves
127.0.0.1.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytest.importorskip("optuna")

from harma.tune import cluster
from harma.tune.cluster import ClusterError

ROOT = Path(__file__).resolve().parents[2]
# Not a speed goal: a bound far below Ray's own connection retries (minutes), far above a busy 2-core
# machine's start-up (44 s measured while other jobs ran), so only a hang fails it.
LIMIT_S = 120


def closed_loopback_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released, by this process)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scratch(tmp_path) -> Path:
    """A working directory with studies/smoke.yaml and a private, empty Ray temp dir."""
    (tmp_path / "studies").mkdir()
    shutil.copy(ROOT / "studies" / "smoke.yaml", tmp_path / "studies" / "smoke.yaml")
    (tmp_path / "raytmp").mkdir()
    return tmp_path


def run_with_address(scratch: Path, address: str) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_TMPDIR=str(scratch / "raytmp"), RAY_USAGE_STATS_ENABLED="0", OMP_NUM_THREADS="1")
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "harma.cli", "study", "run", "studies/smoke.yaml",
                             "--address", address], check=False, cwd=scratch, env=env, capture_output=True, text=True,
                            timeout=LIMIT_S + 60)
    return result, time.monotonic() - start


def assert_one_clear_error(result: subprocess.CompletedProcess, elapsed: float, address: str, scratch: Path):
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("harma: error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert address in errors[0], errors[0]
    assert "Traceback" not in output, output[-3000:]
    assert elapsed < LIMIT_S, f"took {elapsed:.1f} s"
    assert not any((scratch / "raytmp").iterdir()), "a Ray was started (its temp dir is not empty)"
    assert not (scratch / "results").exists(), "the study started writing results"


def test_unreachable_address_is_one_clear_error(scratch):
    address = f"127.0.0.1:{closed_loopback_port()}"
    result, elapsed = run_with_address(scratch, address)
    assert_one_clear_error(result, elapsed, address, scratch)
    assert "cannot reach a Ray cluster" in result.stderr


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.1:port", "127.0.0.1:99999", ":6379"])
def test_malformed_address_is_one_clear_error(scratch, address):
    result, elapsed = run_with_address(scratch, address)
    assert_one_clear_error(result, elapsed, address, scratch)
    assert "expected auto, HOST:PORT or ray://HOST:PORT" in result.stderr


# ------------------------------------------------------------------ connect(): loopback client defaults

LOOPBACK_VARS = ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_AUTH_MODE")


@pytest.fixture
def isolated_client(monkeypatch, tmp_path):
    """connect() with ray.init replaced by a recorder and Ray's cached switches restored afterwards."""
    import ray
    from ray._private import ray_constants

    saved_env = dict(os.environ)   # connect() writes os.environ directly
    for name in (*LOOPBACK_VARS, "RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    token = tmp_path / "auth_token"
    token.write_text("0" * 8)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", ray_constants.ENABLE_RAY_CLUSTER)
    monkeypatch.setattr(cluster, "_check_reachable", lambda address: None)
    calls = []

    def fake_init(**kwargs):
        calls.append({"kwargs": kwargs, "env": {k: os.environ.get(k) for k in LOOPBACK_VARS},
                      "enable_cluster": ray_constants.ENABLE_RAY_CLUSTER})

    monkeypatch.setattr(ray, "init", fake_init)
    yield calls
    # Ray re-reads RAY_AUTH_MODE into its cached config only when asked: ask again now that it is restored.
    monkeypatch.undo()
    os.environ.clear()
    os.environ.update(saved_env)
    from ray._raylet import Config

    Config.initialize("")


def smoke_study():
    from harma.study.parse import load_study

    return load_study(ROOT / "studies" / "smoke.yaml")


@pytest.mark.parametrize("address", ["127.0.0.1:6379", "localhost:6379", "ray://127.0.0.1:10001"])
def test_loopback_address_defaults_the_client_env(isolated_client, address):
    assert cluster.connect(smoke_study(), address) is False
    (call,) = isolated_client
    assert call["kwargs"]["address"] == address
    assert call["env"] == {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}
    assert call["enable_cluster"] is False, "Ray's import-time switch was not refreshed"


def test_loopback_defaults_come_from_ray_address_too(isolated_client, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    cluster.connect(smoke_study(), None)
    assert isolated_client[0]["env"]["RAY_AUTH_MODE"] == "token"


def test_user_settings_are_kept(isolated_client, monkeypatch):
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "1")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    from ray._private import ray_constants

    before = ray_constants.ENABLE_RAY_CLUSTER
    cluster.connect(smoke_study(), "127.0.0.1:6379")
    (call,) = isolated_client
    assert call["env"] == {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1", "RAY_AUTH_MODE": "disabled"}
    assert call["enable_cluster"] is before


def test_no_token_means_no_token_mode(isolated_client, monkeypatch, tmp_path):
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    cluster.connect(smoke_study(), "127.0.0.1:6379")
    assert isolated_client[0]["env"] == {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": None}


@pytest.mark.parametrize("address", ["10.1.2.3:6379", "head.example:6379", "auto"])
def test_other_addresses_leave_the_env_alone(isolated_client, address):
    cluster.connect(smoke_study(), address)
    (call,) = isolated_client
    assert call["env"] == {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": None, "RAY_AUTH_MODE": None}


def test_malformed_address_raises_before_ray(monkeypatch):
    import ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray, "init", lambda **kw: pytest.fail("ray.init called for a malformed address"))
    with pytest.raises(ClusterError, match="127.0.0.1:0"):
        cluster.connect(smoke_study(), "127.0.0.1:0")
