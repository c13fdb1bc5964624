"""The files under cluster/: valid YAML with the fields `ray up` and KubeRay need, Ray's own offline
validation of the cluster-launcher YAMLs, no credential-looking strings, and a syntactically valid
cluster/local.sh.  Fast: nothing here starts Ray (the one test that does is opt-in, see the end).
"""
from __future__ import annotations

import copy
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
LAUNCHER_YAMLS = {"aws": CLUSTER / "aws.yaml", "gcp": CLUSTER / "gcp.yaml"}
KUBERAY = CLUSTER / "kuberay"
LOCAL_SH = CLUSTER / "local.sh"


def load_docs(path: Path) -> list[dict]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path} holds no YAML document"
    return docs


def the_doc(path: Path, kind: str) -> dict:
    docs = [d for d in load_docs(path) if d.get("kind") == kind]
    assert len(docs) == 1, f"{path}: expected one {kind} document, found {len(docs)}"
    return docs[0]


def all_cluster_yamls() -> list[Path]:
    return sorted(p for p in CLUSTER.rglob("*") if p.suffix in (".yaml", ".yml"))


# --------------------------------------------------------------------------------------------- all YAML

def test_every_yaml_parses():
    paths = all_cluster_yamls()
    assert {p.name for p in paths} >= {"aws.yaml", "gcp.yaml", "raycluster.yaml", "rayjob.yaml"}
    for path in paths:
        for doc in load_docs(path):
            assert isinstance(doc, dict), f"{path}: a document is not a mapping"


# ------------------------------------------------------------------------------ ray up (cluster launcher)

@pytest.mark.parametrize("cloud", sorted(LAUNCHER_YAMLS))
def test_launcher_yaml_required_fields(cloud):
    cfg = load_docs(LAUNCHER_YAMLS[cloud])[0]
    assert cfg["cluster_name"]
    assert cfg["provider"]["type"] == cloud
    assert cfg["auth"]["ssh_user"]
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types
    head = types[cfg["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0, "the head should not advertise GPUs"

    gpu_groups = {name: t for name, t in types.items() if t["resources"].get("GPU", 0) > 0}
    assert gpu_groups, "no node type advertises GPU resources"
    for name, group in gpu_groups.items():
        assert name != cfg["head_node_type"]
        assert 0 <= group.get("min_workers", 0) <= group["max_workers"] <= cfg["max_workers"]
        assert group["resources"]["GPU"] == 8, "the GPU group is meant to be 8-GPU nodes"
        assert group["node_config"], f"{name}: empty node_config"

    setup = " ; ".join(cfg["setup_commands"])
    assert "pip install" in setup and ".[all]" in setup
    assert cfg["file_mounts"], "the repository must be file-mounted for `pip install .[all]`"
    assert "." in cfg["file_mounts"].values(), "the repository (.) is not file-mounted"


@pytest.mark.parametrize("cloud", sorted(LAUNCHER_YAMLS))
def test_launcher_start_commands_are_locked_down(cloud):
    cfg = load_docs(LAUNCHER_YAMLS[cloud])[0]
    head = " ".join(cfg["head_start_ray_commands"])
    workers = " ".join(cfg["worker_start_ray_commands"])
    assert "ray start --head" in head
    assert "--dashboard-host=127.0.0.1" in head, "the dashboard must be reachable only through a tunnel"
    assert "--address=$RAY_HEAD_IP:" in workers
    for cmds in (head, workers):
        assert "RAY_AUTH_MODE=token" in cmds, "token auth must be on for every node"
        assert "--disable-usage-stats" in cmds
        assert "--min-worker-port" in cmds and "--max-worker-port" in cmds
        assert "--object-manager-port" in cmds
    assert "0.0.0.0" not in head + workers


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection or resolve a name fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.parametrize("cloud", sorted(LAUNCHER_YAMLS))
def test_ray_offline_validation(cloud, no_network):
    """Ray's own check, as `ray up` runs it before touching the cloud: merge with the provider's defaults
    (prepare_config), then validate against ray-schema.json plus Ray's cross-field rules."""
    pytest.importorskip("jsonschema", reason="ray's validate_config needs jsonschema")
    try:
        from ray.autoscaler._private.util import prepare_config, validate_config
    except ImportError as exc:  # pragma: no cover - depends on the installed Ray
        pytest.skip(f"ray's offline cluster-config validation is not importable: {exc}")
    cfg = load_docs(LAUNCHER_YAMLS[cloud])[0]
    prepared = prepare_config(copy.deepcopy(cfg))
    validate_config(prepared)
    assert prepared["head_node_type"] == cfg["head_node_type"]


# ------------------------------------------------------------------------------------------------ KubeRay

def _containers(pod_template: dict) -> list[dict]:
    return pod_template["spec"]["containers"]


def _check_ray_cluster_spec(spec: dict, where: str) -> None:
    assert spec["authOptions"]["mode"] == "token", f"{where}: token auth must be on"
    head = spec["headGroupSpec"]
    assert head.get("serviceType", "ClusterIP") == "ClusterIP", f"{where}: keep the head Service internal"
    assert str(head["rayStartParams"].get("num-cpus")) == "0", f"{where}: keep trials off the head"
    assert _containers(head["template"])[0]["image"]
    groups = spec["workerGroupSpecs"]
    gpu_groups = [g for g in groups
                  if any("nvidia.com/gpu" in c.get("resources", {}).get("limits", {})
                         for c in _containers(g["template"]))]
    assert gpu_groups, f"{where}: no worker group has nvidia.com/gpu limits"
    for group in gpu_groups:
        assert group["groupName"]
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        for c in _containers(group["template"]):
            assert int(c["resources"]["limits"]["nvidia.com/gpu"]) > 0
            assert c["image"]
    mounts = [m["mountPath"] for c in _containers(head["template"]) for m in c.get("volumeMounts", [])]
    assert any(p.endswith("/results") for p in mounts), f"{where}: the head does not mount shared results"


def test_raycluster_manifest():
    path = KUBERAY / "raycluster.yaml"
    rc = the_doc(path, "RayCluster")
    assert rc["apiVersion"] == "ray.io/v1"
    assert rc["metadata"]["name"]
    _check_ray_cluster_spec(rc["spec"], "raycluster.yaml")
    pvc = the_doc(path, "PersistentVolumeClaim")
    assert "ReadWriteMany" in pvc["spec"]["accessModes"], "results storage must be shared by all pods"
    claim_names = {v["persistentVolumeClaim"]["claimName"]
                   for v in rc["spec"]["headGroupSpec"]["template"]["spec"]["volumes"]
                   if "persistentVolumeClaim" in v}
    assert pvc["metadata"]["name"] in claim_names


def test_rayjob_manifest():
    rj = the_doc(KUBERAY / "rayjob.yaml", "RayJob")
    assert rj["apiVersion"] == "ray.io/v1"
    assert "harma study run" in rj["spec"]["entrypoint"]
    assert "studies/search-rsitmd.yaml" in rj["spec"]["entrypoint"]
    _check_ray_cluster_spec(rj["spec"]["rayClusterSpec"], "rayjob.yaml")


def test_rayjob_and_raycluster_run_the_same_image():
    rc = the_doc(KUBERAY / "raycluster.yaml", "RayCluster")["spec"]
    rj = the_doc(KUBERAY / "rayjob.yaml", "RayJob")["spec"]["rayClusterSpec"]

    def images(spec):
        groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
        return {c["image"] for g in groups for c in _containers(g["template"])}

    assert images(rc) == images(rj)
    assert rc["rayVersion"] == rj["rayVersion"]


# -------------------------------------------------------------------------------------------- credentials

SECRET_PATTERNS = [
    re.compile(r"aws_secret_access_key", re.IGNORECASE),
    re.compile(r"aws_session_token", re.IGNORECASE),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),                          # AWS access key id
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\"private_key(_id)?\"\s*:"),                      # GCP service-account key JSON
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),                      # Google API key
    re.compile(r"\bgh[pousr]_[0-9A-Za-z]{36}\b"),                  # GitHub token
    re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])"),          # a Ray auth token (32 random bytes, hex)
    re.compile(r"RAY_AUTH_TOKEN\s*[:=]\s*['\"]?[^\s'\"$]{8,}"),   # a token value given inline
    re.compile(r"^\s*ssh_private_key\s*:", re.MULTILINE),                  # a key path baked into a config
    re.compile(r"password\s*[:=]\s*\S{4,}", re.IGNORECASE),
]
SECRET_KEY_NAMES = re.compile(r"secret|password|passwd|token|private_key|credential|api_?key", re.IGNORECASE)


def _walk(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}" if path else str(k))
            yield f"{path}.{k}" if path else str(k), k, v
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def test_no_credential_looking_strings():
    files = [p for p in CLUSTER.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert LOCAL_SH in files
    for path in files:
        text = path.read_text()
        for pattern in SECRET_PATTERNS:
            hit = pattern.search(text)
            assert hit is None, f"{path.relative_to(ROOT)}: credential-looking text {hit.group(0)!r}"


def _is_file_reference(value: str) -> bool:
    return value.startswith(("/", "~/", "./"))


def test_no_secret_valued_keys_in_manifests():
    """Keys that name a secret may only hold references: a mapping (a Secret object, valueFrom) or a file
    path (file_mounts copies ~/.ray/auth_token from the user's machine), never a literal value."""
    for path in all_cluster_yamls():
        for doc in load_docs(path):
            for where, key, value in _walk(doc):
                if isinstance(key, str) and SECRET_KEY_NAMES.search(key):
                    literal = isinstance(value, (str, int)) and value not in ("", None)
                    assert not literal or (isinstance(value, str) and _is_file_reference(value)), \
                        f"{path.relative_to(ROOT)}: {where} holds a literal value"


# --------------------------------------------------------------------------------------------- local.sh

BASH = shutil.which("bash")


@pytest.mark.skipif(BASH is None, reason="needs bash")
def test_local_sh_syntax():
    result = subprocess.run([BASH, "-n", str(LOCAL_SH)], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert os.access(LOCAL_SH, os.X_OK), "cluster/local.sh must be executable"


@pytest.mark.skipif(BASH is None, reason="needs bash")
def test_local_sh_help_and_bad_input(tmp_path):
    run = lambda *args: subprocess.run([BASH, str(LOCAL_SH), *args], check=False, capture_output=True, text=True,
                                       cwd=tmp_path, timeout=20)
    help_ = run("--help")
    assert help_.returncode == 0
    for flag in ("--workers", "--port", "--cpus", "--resources", "start", "stop", "status"):
        assert flag in help_.stdout
    assert run("start", "--workers", "two").returncode == 2
    assert run("start", "--bogus").returncode == 2
    assert run("frobnicate").returncode == 2
    # `stop` with nothing recorded is a no-op, not an error, and never a blanket `ray stop`.
    stop = run("stop", "--port", "6999", "--state-dir", str(tmp_path / "none"))
    assert stop.returncode == 0, stop.stderr
    assert "nothing recorded" in stop.stdout


def test_local_sh_never_stops_foreign_ray():
    code = "\n".join(line for line in LOCAL_SH.read_text().splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"\bray\b[^\n]*\bstop\b", code.replace("ray_loopback", "")), "no `ray stop` in local.sh"
    assert "pkill" not in code and "killall" not in code


def test_loopback_wrapper_compiles():
    path = CLUSTER / "ray_loopback.py"
    compile(path.read_text(), str(path), "exec")   # syntax only; writes no __pycache__


# ------------------------------------------------------------------------------------------ opt-in: live

@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("HARMA_TEST_LOCAL_CLUSTER") != "1",
                    reason="starts a 2-node Ray (~30 s); set HARMA_TEST_LOCAL_CLUSTER=1 to run")
def test_local_cluster_two_nodes():
    import tempfile

    port = "6489"
    state = Path(tempfile.mkdtemp(prefix="hrt-", dir="/tmp"))   # short: Ray's socket paths are capped
    env = dict(os.environ)
    run = lambda *args, **kw: subprocess.run([BASH, str(LOCAL_SH), *args, "--port", port,
                                              "--state-dir", str(state)], check=False, capture_output=True,
                                             text=True, env=env, cwd=ROOT, **kw)
    started = run("start", "--workers", "1", timeout=180)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        probe = (f"import ray; ray.init(address='127.0.0.1:{port}', log_to_driver=False); "
                 "nodes = [n for n in ray.nodes() if n['Alive']]; "
                 "assert len(nodes) == 2, nodes; "
                 "assert {n['NodeManagerAddress'] for n in nodes} == {'127.0.0.1'}; "
                 "assert any('worker_node' in n['Resources'] for n in nodes)")
        client_env = {**env, "RAY_AUTH_MODE": "token", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
        probed = subprocess.run([sys.executable, "-c", probe], check=False, capture_output=True, text=True,
                                env=client_env, timeout=120)
        assert probed.returncode == 0, probed.stderr[-2000:]
    finally:
        stopped = run("stop", timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    leftovers = subprocess.run(["ps", "-eo", "args"], check=False, capture_output=True, text=True).stdout
    assert str(state) not in leftovers, "processes of the local cluster survived `stop`"
    shutil.rmtree(state, ignore_errors=True)


@pytest.mark.skipif(BASH is None, reason="needs bash")
def test_local_sh_refuses_a_state_dir_too_long_for_ray_sockets(tmp_path):
    long_dir = tmp_path / ("x" * 80)
    result = subprocess.run([BASH, str(LOCAL_SH), "start", "--state-dir", str(long_dir), "--port", "6998"],
                            check=False, capture_output=True, text=True, timeout=20)
    assert result.returncode == 2 and "too long" in result.stderr
    assert not long_dir.exists()
