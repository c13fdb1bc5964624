"""The local Ray a study starts (`connect(study, None)`) listens on loopback only: every TCP/UDP socket bound by
the Ray processes this test starts (the driver's own core worker, GCS, raylet, agents, metrics exporters, a
worker) is on 127.0.0.1 or ::1, found by reading /proc, and the node address Ray reports is 127.0.0.1.  Also,
without Ray: the switch that keeps Ray on loopback is on only while ray.init runs, the user's setting comes
back afterwards, and a Ray that takes another address anyway is shut down with one clear error.
"""
from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from harma.tune import cluster  # noqa: E402
from harma.tune.cluster import ClusterError  # noqa: E402
from harma.study.parse import load_study  # noqa: E402

TINY_STUDY = """
name: loopback
kind: ablation
base: {config: synthetic-tiny}
seeds: [1]
arms: {harma: {}}
resources: {gpus_per_trial: 0, cpus_per_worker: 1, workers_per_trial: 1, custom: {trial_slot: 1}}
storage: results
"""
# Ports Ray reports for the node; each must be seen listening before the check (agents start after ray.init).
NODE_PORT_KEYS = ("NodeManagerPort", "ObjectManagerPort", "MetricsExportPort", "MetricsAgentPort",
                  "DashboardAgentListenPort", "RuntimeEnvAgentPort")
SOCKET_TABLES = (("/proc/net/tcp", socket.AF_INET, "0A"), ("/proc/net/tcp6", socket.AF_INET6, "0A"),
                 ("/proc/net/udp", socket.AF_INET, "07"), ("/proc/net/udp6", socket.AF_INET6, "07"))
LOOPBACK = {"127.0.0.1", "::1"}
START_LIMIT_S = 120  # agents on a busy 2-core machine; only a hang reaches it


def _hex_ip(text: str, family: int) -> str:
    """An address from /proc/net/*: 32-bit words in host (little-endian) order; IPv4-mapped IPv6 as IPv4."""
    raw = bytes.fromhex(text)
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(socket.inet_ntop(family, raw))
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped or ip)


def bound_sockets() -> dict[str, tuple[str, int]]:
    """inode -> (address, port) of every listening TCP socket and unconnected UDP socket on this machine."""
    found = {}
    for path, family, state in SOCKET_TABLES:
        if not os.path.exists(path):
            continue
        with open(path) as fh:
            for line in fh.readlines()[1:]:
                fields = line.split()
                if fields[3] == state:
                    ip, port = fields[1].split(":")
                    found[fields[9]] = (_hex_ip(ip, family), int(port, 16))
    return found


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:["):-1])
    return inodes


def descendants(root: int) -> set[int]:
    """Pids of every living process below `root` (from the parent pid in /proc/<pid>/stat)."""
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parent[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in parent.items() if ppid in frontier and pid not in found}
        found |= frontier
    return found


def listeners(pids: set[int], skip: set[str] = frozenset()) -> set[tuple[int, str, int]]:
    """(pid, address, port) of every bound socket the given processes hold, except the inodes in `skip`."""
    table = bound_sockets()
    return {(pid, *table[inode]) for pid in pids for inode in socket_inodes(pid) - skip if inode in table}


def study_listeners(before: set[str]) -> set[tuple[int, str, int]]:
    """Sockets of this process opened since `before`, and of every process it started."""
    me = os.getpid()
    return listeners({me}, skip=before) | listeners(descendants(me))


def expected_ports(ray) -> set[int]:
    node = ray.nodes()[0]
    gcs_port = int(ray.get_runtime_context().gcs_address.rsplit(":", 1)[1])
    return {gcs_port} | {int(node[k]) for k in NODE_PORT_KEYS if int(node.get(k) or -1) > 0}


@pytest.fixture
def local_ray(tmp_path, monkeypatch):
    """connect(study, None) as `harma study run` does, in a private Ray temp dir; shut down and restored after."""
    import ray

    (tmp_path / "study.yaml").write_text(TINY_STUDY)
    study = load_study(tmp_path / "study.yaml")
    ray_tmp = tempfile.mkdtemp(prefix="harma-rt-")       # short: Ray's socket paths must stay < 108 bytes
    saved_env = dict(os.environ)                            # connect() writes os.environ directly
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", ray_tmp)
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    try:
        yield ray, study
    finally:
        ray.shutdown()
        os.environ.clear()
        os.environ.update(saved_env)
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.ray
def test_every_listener_of_the_local_ray_is_loopback(local_ray):
    ray, study = local_ray
    from ray._private import ray_constants

    env_before = os.environ.get(cluster.ENABLE_CLUSTER_ENV)
    flag_before = ray_constants.ENABLE_RAY_CLUSTER
    before = socket_inodes(os.getpid())
    assert cluster.connect(study, None) is True
    assert (os.environ.get(cluster.ENABLE_CLUSTER_ENV), ray_constants.ENABLE_RAY_CLUSTER) == (env_before,
                                                                                                flag_before)
    assert ray.nodes()[0]["NodeManagerAddress"] == "127.0.0.1"

    def pid() -> int:
        return os.getpid()

    worker_pid = ray.get(ray.remote(num_cpus=0)(pid).remote())
    want = expected_ports(ray)
    deadline = time.monotonic() + START_LIMIT_S
    while True:
        found = study_listeners(before)
        ports = {port for _, _, port in found}
        if (want <= ports and worker_pid in {pid for pid, _, _ in found}) or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    assert want <= ports, f"ports Ray reports but nothing of this test listens on: {sorted(want - ports)}"
    assert worker_pid in {pid for pid, _, _ in found}, "the worker that ran a task holds no listening socket"
    exposed = sorted((pid, ip, port) for pid, ip, port in found if ip not in LOOPBACK)
    assert not exposed, f"(pid, address, port) of sockets not on loopback: {exposed}"


# ------------------------------------------------------------------ without Ray: the switch is scoped


@pytest.fixture
def fake_local_init(monkeypatch):
    """connect(study, None) with ray.init replaced by a recorder of the loopback switch during the call."""
    import ray
    from ray._private import ray_constants

    saved_env = dict(os.environ)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", True)
    seen = []

    def fake_init(**kwargs):
        seen.append((os.environ.get(cluster.ENABLE_CLUSTER_ENV), ray_constants.ENABLE_RAY_CLUSTER,
                     kwargs["_node_ip_address"]))

    monkeypatch.setattr(ray, "init", fake_init)
    monkeypatch.setattr(ray.util, "get_node_ip_address", lambda: "127.0.0.1")
    yield seen
    monkeypatch.undo()
    os.environ.clear()
    os.environ.update(saved_env)


def study_in(tmp_path: Path):
    (tmp_path / "study.yaml").write_text(TINY_STUDY)
    return load_study(tmp_path / "study.yaml")


@pytest.mark.parametrize("user_value", [None, "1"])
def test_loopback_switch_is_on_only_during_ray_init(fake_local_init, tmp_path, monkeypatch, user_value):
    from ray._private import ray_constants

    if user_value is None:
        monkeypatch.delenv(cluster.ENABLE_CLUSTER_ENV, raising=False)
    else:
        monkeypatch.setenv(cluster.ENABLE_CLUSTER_ENV, user_value)
    assert cluster.connect(study_in(tmp_path), None) is True
    assert fake_local_init == [("0", False, "127.0.0.1")]
    assert os.environ.get(cluster.ENABLE_CLUSTER_ENV) == user_value
    assert ray_constants.ENABLE_RAY_CLUSTER is True


def test_switch_is_restored_when_ray_init_fails(fake_local_init, tmp_path, monkeypatch):
    import ray
    from ray._private import ray_constants

    monkeypatch.delenv(cluster.ENABLE_CLUSTER_ENV, raising=False)
    monkeypatch.setattr(ray, "init", lambda **kw: (_ for _ in ()).throw(RuntimeError("no Ray today")))
    with pytest.raises(RuntimeError, match="no Ray today"):
        cluster.connect(study_in(tmp_path), None)
    assert cluster.ENABLE_CLUSTER_ENV not in os.environ
    assert ray_constants.ENABLE_RAY_CLUSTER is True


def test_a_ray_on_another_address_is_shut_down_with_one_error(fake_local_init, tmp_path, monkeypatch):
    import ray

    shutdowns = []
    monkeypatch.setattr(ray.util, "get_node_ip_address", lambda: "192.0.2.7")
    monkeypatch.setattr(ray, "shutdown", lambda: shutdowns.append(True))
    with pytest.raises(ClusterError, match=r"took address 192\.0\.2\.7 instead of 127\.0\.0\.1") as err:
        cluster.connect(study_in(tmp_path), None)
    assert "\n" not in str(err.value)
    assert shutdowns == [True]
