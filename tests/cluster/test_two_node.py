"""A real two-node Ray cluster on this machine, all on 127.0.0.1, running the smoke study on its worker node.

`cluster/local.sh start` brings up a head (`ray start --head --node-ip-address=127.0.0.1`, no `trial_slot`) and
one worker node (`ray start --address=127.0.0.1:PORT --node-ip-address=127.0.0.1`) that advertises
`trial_slot: 2`, the custom resource every smoke trial asks for, so trials can only run on the worker.  Then:

* `ray job submit --address http://127.0.0.1:DASHBOARD -- bash -c 'cd SCRATCH && harma study run
  studies/smoke.yaml'`, and the Parquet results must show all 10 trials on the worker node's Ray node id,
  some COMPLETE and some PRUNED;
* `harma study run studies/smoke.yaml --address 127.0.0.1:PORT` straight at the GCS (a 1-trial copy), from a
  client environment *without* RAY_AUTH_MODE and RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER: `connect()` supplies both.

Everything runs in a scratch directory (results never land in the repository), on a free block of ports,
with its own Ray auth token (RAY_AUTH_TOKEN_PATH; ~/.ray is neither read nor written).  The cluster is
always stopped with `cluster/local.sh stop`, which signals only the Ray sessions it started; whatever of
ours is still alive after that (a process naming our state dir or running in our scratch directory) is
killed by pid.  Needs Linux, bash, setsid and `ray[default]` (the dashboard's job API).
"""
from __future__ import annotations

import json
import os
import random
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
LOCAL_SH = ROOT / "cluster" / "local.sh"
SMOKE = ROOT / "studies" / "smoke.yaml"
BIN = Path(sys.executable).parent


def _missing_requirement() -> str | None:
    if not sys.platform.startswith("linux"):
        return "local.sh clusters are tested on Linux only"
    for tool in ("bash", "setsid", "ps"):
        if shutil.which(tool) is None:
            return f"needs `{tool}` on PATH"
    try:
        import optuna  # noqa: F401
        import pandas  # noqa: F401
        import pyarrow  # noqa: F401
        import ray
    except ImportError as exc:
        return f"needs harma[tune]: {exc}"
    try:
        import ray.dashboard.optional_deps  # noqa: F401  (what `ray start` checks before starting the dashboard)
    except ImportError as exc:
        return f"needs ray[default] for the dashboard and `ray job submit` (pip install 'ray[default]'): {exc}"
    return None


_why_not = _missing_requirement()
if _why_not:
    pytest.skip(_why_not, allow_module_level=True)


def _console_script(name: str) -> list[str]:
    """The `name` command of the Python running the tests (so nodes, CLI and job use one environment)."""
    beside = BIN / name
    if beside.exists():
        return [str(beside)]
    found = shutil.which(name)
    if found:
        return [found]
    return [sys.executable, "-m", {"ray": "ray.scripts.scripts", "harma": "harma.cli"}[name]]


RAY = _console_script("ray")
HARMA = _console_script("harma")


# ------------------------------------------------------------------------------------------------ ports

def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(nodes: int = 2, tries: int = 60) -> tuple[int, int, int]:
    """(GCS port P, dashboard port P+1, port base B=P+20000) with P, P+1 and B .. B+100*nodes-1 all free.

    local.sh gives node i the ports B+100*i .. B+100*i+99; P in 10000-12399 keeps B's blocks under Linux's
    ephemeral range (32768+), so an outgoing connection cannot take one of them while the cluster starts.
    """
    rng = random.Random()
    for _ in range(tries):
        port = rng.randrange(10000, 12400)
        base = port + 20000
        wanted = [port, port + 1, *range(base, base + 100 * nodes)]
        if all(_port_free(p) for p in wanted):
            return port, port + 1, base
    raise RuntimeError("no free block of ports on 127.0.0.1 for a local cluster")


# ------------------------------------------------------------------------------------------ the cluster

@dataclass
class LocalCluster:
    port: int
    dashboard_port: int
    state: Path
    scratch: Path
    env: dict            # environment of the nodes and of clients (token auth, loopback)
    head_id: str
    worker_id: str
    nodes: list

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"


def _local_sh(command: str, *args: str, port: int, state: Path, cwd: Path, env: dict, timeout: float):
    return subprocess.run(["bash", str(LOCAL_SH), command, "--port", str(port), "--state-dir", str(state), *args],
                          check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _ours(state: Path, scratch: Path) -> list[int]:
    """Pids of processes this test started that are still alive: they name our state dir or run in scratch."""
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if str(state) in cmdline or cwd == str(scratch) or cwd.startswith(f"{scratch}/"):
            found.append(int(entry.name))
    return found


def _stop(port: int, state: Path, scratch: Path, env: dict) -> str:
    """local.sh stop, then SIGKILL (by pid) anything of ours still alive; returns what happened."""
    report = ""
    try:
        stopped = _local_sh("stop", port=port, state=state, cwd=scratch, env=env, timeout=120)
        report = stopped.stdout + stopped.stderr
    except subprocess.TimeoutExpired as exc:
        report = f"local.sh stop timed out: {exc}"
    deadline = time.monotonic() + 10
    while _ours(state, scratch) and time.monotonic() < deadline:
        time.sleep(0.5)
    leftovers = _ours(state, scratch)
    for pid in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if leftovers:
        report += f"\nkilled {len(leftovers)} leftover process(es) of this test: {leftovers}"
    return report


NODES_PROBE = """
import json, ray
ray.init(address={address!r}, log_to_driver=False, logging_level="ERROR")
print("NODES=" + json.dumps([{{"id": n["NodeID"], "alive": n["Alive"], "ip": n["NodeManagerAddress"],
                              "resources": n["Resources"]}} for n in ray.nodes()]))
"""


@pytest.fixture(scope="module")
def local_cluster(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("two-node")
    (scratch / "studies").mkdir()
    shutil.copy(SMOKE, scratch / "studies" / "smoke.yaml")
    # Short on purpose: Ray's Unix socket paths under it are capped at 107 bytes.
    state = Path(tempfile.mkdtemp(prefix="hrt-", dir="/tmp"))
    token = state / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    port, dashboard_port, base = free_port_block()

    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token), RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
               RAY_USAGE_STATS_ENABLED="0", PYTHON_BIN=sys.executable, RAY_BIN=RAY[0] if len(RAY) == 1 else "ray")
    env.setdefault("OMP_NUM_THREADS", "1")   # 2 trials at once on a small machine

    t0 = time.monotonic()
    try:
        started = _local_sh("start", "--workers", "1", "--cpus", "2", "--head-cpus", "1",
                            "--resources", json.dumps({"worker_node": 1, "trial_slot": 2}),
                            "--port-base", str(base), "--dashboard-port", str(dashboard_port),
                            port=port, state=state, cwd=scratch, env=env, timeout=300)
        assert started.returncode == 0, f"local.sh start failed:\n{started.stdout}\n{started.stderr}"
        probe = subprocess.run([sys.executable, "-c", NODES_PROBE.format(address=f"127.0.0.1:{port}")],
                               check=False, cwd=scratch, env=env, capture_output=True, text=True, timeout=120)
        lines = [line for line in probe.stdout.splitlines() if line.startswith("NODES=")]
        assert probe.returncode == 0 and lines, probe.stdout[-2000:] + probe.stderr[-3000:]
        nodes = [n for n in json.loads(lines[-1][len("NODES="):]) if n["alive"]]
        heads = [n for n in nodes if "head_node" in n["resources"]]
        workers = [n for n in nodes if "local_worker_1" in n["resources"]]
        assert len(nodes) == 2 and len(heads) == 1 and len(workers) == 1, nodes
        print(f"\n[two-node] cluster up in {time.monotonic() - t0:.1f} s at 127.0.0.1:{port} "
              f"(dashboard {dashboard_port}, ports {base}-{base + 199})")
        yield LocalCluster(port, dashboard_port, state, scratch, env, heads[0]["id"], workers[0]["id"], nodes)
    finally:
        t1 = time.monotonic()
        report = _stop(port, state, scratch, env)
        print(f"\n[two-node] stopped in {time.monotonic() - t1:.1f} s; {report.strip()}")
        still = _ours(state, scratch)
        shutil.rmtree(state, ignore_errors=True)
        assert not still, f"processes of the local cluster survived stop: {still}"


def _read_trials(root: Path):
    from harma.results.store import ResultsStore

    return ResultsStore(root / "results").dataset().to_table().to_pandas()


def _assert_on_worker(trials, cluster: LocalCluster, count: int) -> dict:
    assert len(trials) == count, trials[["trial_id", "status"]]
    assert trials["trial_id"].is_unique
    assert set(trials["node_id"]) == {cluster.worker_id}, (
        f"trials ran on {sorted(set(trials['node_id']))}, worker node is {cluster.worker_id}, "
        f"head is {cluster.head_id}")
    counts = trials["status"].value_counts().to_dict()
    assert set(counts) <= {"COMPLETE", "PRUNED"}, counts
    return counts


# ---------------------------------------------------------------------------------------------- tests

def test_cluster_layout(local_cluster):
    """Both nodes on loopback; only the worker can hold a trial."""
    assert {n["ip"] for n in local_cluster.nodes} == {"127.0.0.1"}
    by_id = {n["id"]: n["resources"] for n in local_cluster.nodes}
    assert "trial_slot" not in by_id[local_cluster.head_id]
    assert by_id[local_cluster.worker_id]["trial_slot"] == 2


def test_job_submit_runs_smoke_study_on_worker_node(local_cluster):
    scratch = local_cluster.scratch
    entrypoint = f"cd {shlex.quote(str(scratch))} && {shlex.join(HARMA)} study run studies/smoke.yaml"
    t0 = time.monotonic()
    job = subprocess.run([*RAY, "job", "submit", "--address", local_cluster.dashboard,
                          "--", "bash", "-c", entrypoint],
                         check=False, cwd=scratch, env=local_cluster.env, capture_output=True, text=True,
                         timeout=900)
    elapsed = time.monotonic() - t0
    output = job.stdout + job.stderr
    assert job.returncode == 0 and "succeeded" in output, output[-6000:]
    assert "search study: 10 trial(s) to run" in output, output[-6000:]
    counts = _assert_on_worker(_read_trials(scratch), local_cluster, 10)
    assert counts.get("COMPLETE", 0) >= 1 and counts.get("PRUNED", 0) >= 1, counts
    print(f"\n[two-node] ray job submit: {elapsed:.1f} s, {counts}")


def test_harma_address_runs_on_worker_node(local_cluster):
    """`--address 127.0.0.1:PORT` with no RAY_AUTH_MODE / RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER in the client's
    environment: connect() defaults both for a loopback address (a 1-trial copy of the smoke study)."""
    driver_dir = local_cluster.scratch / "direct"
    (driver_dir / "studies").mkdir(parents=True)
    text = SMOKE.read_text()
    assert "\nnum_samples: 10\n" in text
    (driver_dir / "studies" / "smoke.yaml").write_text(text.replace("\nnum_samples: 10\n", "\nnum_samples: 1\n"))
    env = {k: v for k, v in local_cluster.env.items()
           if k not in ("RAY_AUTH_MODE", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    t0 = time.monotonic()
    run = subprocess.run([*HARMA, "study", "run", "studies/smoke.yaml", "--address", local_cluster.address],
                         check=False, cwd=driver_dir, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - t0
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    counts = _assert_on_worker(_read_trials(driver_dir), local_cluster, 1)
    print(f"\n[two-node] harma study run --address: {elapsed:.1f} s, {counts}")
