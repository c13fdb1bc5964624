"""Getting a Ray to run a study on, and checking the study fits it before anything starts.

No address (and no RAY_ADDRESS): start a private local Ray with a capped object store and the study's
custom resources, with node address 127.0.0.1 and every TCP listener (GCS, raylet, object manager, workers,
dashboard and runtime-env agents, metrics exporters) bound there.  `auto`, `HOST:PORT` or `ray://HOST:PORT`:
connect, after a TCP reachability check so a wrong address is one clear error within seconds.  Then: every
custom resource the study asks for must exist on some node, a trial's per-worker GPU request must fit on one
node, results storage must be shared when the cluster spans several hosts, and `max_concurrent` derives from
the cluster and the trial request.
"""
from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass

from harma.errors import ClusterError
from harma.tune.quiet import env_var
from harma.study.model import Study

LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024
SHARED_FS_TYPES = ("nfs", "nfs4", "cifs", "smb3", "lustre", "gpfs", "ceph", "glusterfs", "beegfs", "fuse.",
                   "9p", "virtiofs", "efs", "wekafs")


BACKBONE_CACHE_ENV = "HARMA_BACKBONE_CACHE"    # harma.model.cache.ENV (not imported: the driver stays light)
FUNCTION_THREAD_TIMEOUT_S = 60   # how long a reused trial actor waits for the previous trial's thread to end


def compile_cache_dir(study: Study) -> str:
    """The study's persistent torch.compile cache: `<storage>/compile-cache/<name>` (a bucket: under ~/.harma)."""
    root = os.path.expanduser("~/.harma") if study.storage_is_remote else study.storage_path()
    return os.path.join(os.path.abspath(root), "compile-cache", study.name)


def trial_env(study: Study) -> dict[str, str]:
    """Environment for every trial process: run in the driver's working directory (relative paths hold); a
    reused actor waits up to FUNCTION_THREAD_TIMEOUT_S for the last trial's thread (Tune's default, 2 s, is less
    than a stopped trial's loader workers may take to exit); the study's trials share one persistent compile
    cache (Inductor's and Triton's), so a warm cache compiles each graph once per study; and a single-worker
    study's trial processes keep their last frozen backbone (harma.model.cache; a DDP trial's workers live for
    one trial only)."""
    cache = compile_cache_dir(study)
    env = {"RAY_CHDIR_TO_TRIAL_DIR": "0", "TUNE_FUNCTION_THREAD_TIMEOUT_S": str(FUNCTION_THREAD_TIMEOUT_S),
           "TORCHINDUCTOR_CACHE_DIR": os.path.join(cache, "inductor"),
           "TRITON_CACHE_DIR": os.path.join(cache, "triton")}
    if study.resources.workers_per_trial == 1:
        env[BACKBONE_CACHE_ENV] = "1"
    return env


def _split_address(address: str) -> tuple[str, int]:
    """(host, port) of `HOST:PORT` or `ray://HOST:PORT`; ClusterError for anything else."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f"--address {address!r}: expected auto, HOST:PORT or ray://HOST:PORT "
                           f"(PORT a number from 1 to 65535)")
    return host, int(port)


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    host, port = _split_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise ClusterError(f"--address {address}: cannot reach a Ray cluster there ({exc}); is it running, "
                           f"and is the port open to this machine?") from None


LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
LOCAL_NODE_IP = "127.0.0.1"
ENABLE_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
LOOPBACK_CLIENT_ENV = {ENABLE_CLUSTER_ENV: "0", "RAY_AUTH_MODE": "token"}


def _ray_token_available() -> bool:
    """A Ray auth token where Ray looks for one: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.join(os.path.expanduser("~"), ".ray", "auth_token")
    return os.path.isfile(path) and os.path.getsize(path) > 0


def _loopback_client_defaults(address: str) -> dict[str, str]:
    """For a cluster on this machine's loopback, set what a `cluster/local.sh` client needs, unless the user
    already set it; returns the variables this call set.

    Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER once, when it is imported, and caches RAY_AUTH_MODE in its
    config, so setting the environment alone is too late for this process: both are refreshed here too.
    """
    if _split_address(address)[0].lower() not in LOOPBACK_HOSTS:
        return {}
    applied = {k: v for k, v in LOOPBACK_CLIENT_ENV.items() if k not in os.environ}
    if not _ray_token_available():
        applied.pop("RAY_AUTH_MODE", None)  # token mode without a token fails in ray.init; leave it to Ray
    os.environ.update(applied)
    if ENABLE_CLUSTER_ENV in applied:
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False  # else ray.init swaps 127.0.0.1 for the LAN address
    if "RAY_AUTH_MODE" in applied:
        try:
            from ray._raylet import Config

            Config.initialize("")  # re-read RAY_AUTH_MODE (what Ray's own token-auth switch does)
        except (ImportError, AttributeError):  # pragma: no cover - depends on the installed Ray
            pass
    return applied


def connect(study: Study, address: str | None, verbose: bool = False) -> bool:
    """ray.init for the study; returns True when this call started a local Ray (the caller shuts it down).
    The trial processes' own output reaches this terminal only when `verbose` (`--verbose`).

    `address` (else RAY_ADDRESS) names a running cluster: `auto`, `HOST:PORT` or `ray://HOST:PORT`.  A malformed
    or unreachable address is one ClusterError naming it, raised before Ray is started or contacted.

    When HOST is 127.0.0.1 or localhost (a `cluster/local.sh` cluster), this client process defaults two
    variables in its own environment, each only where the user has not set it:
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (else Ray replaces 127.0.0.1 with the machine's LAN address and cannot
    reach a cluster bound to loopback) and, when a token exists (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or
    ~/.ray/auth_token, where Ray reads it from), RAY_AUTH_MODE=token (else Ray sends no token to an explicit
    address and a token-auth cluster refuses the client).  A value the user set, "1" or "disabled" included,
    is kept.  Nodes are not affected: they get their settings from whoever started them.
    With no address, a private local Ray whose every listener binds 127.0.0.1 is started (see _loopback_node).
    """
    import ray

    address = address or os.environ.get("RAY_ADDRESS")
    env = trial_env(study)
    runtime_env = {"env_vars": env}
    os.environ.update(env)
    if address:
        if address != "auto":
            _check_reachable(address)
            _loopback_client_defaults(address)
        try:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=verbose)
        except (ConnectionError, RuntimeError) as exc:
            raise ClusterError(f"--address {address}: cannot connect to Ray ({exc})") from None
        return False
    _start_local(study, runtime_env, verbose)
    return True


@contextmanager
def _loopback_node():
    """While a local Ray starts: keep its node address 127.0.0.1, then restore what was there.

    On Linux ray.init replaces 127.0.0.1 with the machine's LAN address unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER
    is 0, and every Ray process binds to all interfaces unless its node address is loopback.  Ray caches that
    variable at import, so the cached value is flipped too; the processes ray.init spawns (GCS, raylet, agents,
    which later spawn the workers) inherit the variable.  Both are put back when ray.init returns, so a later
    ray.init(address=...) in this process sees the user's own setting again.
    """
    from ray._private import ray_constants

    saved_flag = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        with env_var(ENABLE_CLUSTER_ENV, "0"):
            yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag


def _start_local(study: Study, runtime_env: dict, verbose: bool = False) -> None:
    """ray.init of a private Ray on 127.0.0.1; ClusterError (after shutting it down) if Ray took another address."""
    import ray

    cpus = os.cpu_count() or 1
    custom = {name: float(max(cpus, study.max_concurrent or 0)) for name in study.resources.custom}
    with _loopback_node():
        ray.init(num_cpus=cpus, resources=custom, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                 include_dashboard=False, _node_ip_address=LOCAL_NODE_IP, runtime_env=runtime_env,
                 log_to_driver=verbose, configure_logging=verbose)
    node_ip = ray.util.get_node_ip_address()
    if node_ip != LOCAL_NODE_IP:
        ray.shutdown()
        raise ClusterError(f"the local Ray took address {node_ip} instead of {LOCAL_NODE_IP} (this Ray version "
                           f"ignores {ENABLE_CLUSTER_ENV}=0); refusing to run a study on a network-reachable Ray")


@dataclass(frozen=True)
class ClusterShape:
    nodes: int
    hosts: int
    total: dict
    per_node: list


def cluster_shape() -> ClusterShape:
    import ray

    alive = [n for n in ray.nodes() if n.get("Alive")]
    hosts = {n.get("NodeManagerHostname") or n.get("NodeManagerAddress") for n in alive}
    return ClusterShape(len(alive), len(hosts), dict(ray.cluster_resources()), [n["Resources"] for n in alive])


def _is_shared_path(path: str) -> bool:
    best, fstype = "", ""
    try:
        with open("/proc/mounts") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 3 and path.startswith(parts[1]) and len(parts[1]) > len(best):
                    best, fstype = parts[1], parts[2]
    except OSError:
        return False
    return fstype.startswith(SHARED_FS_TYPES)


def check_fits(study: Study, shape: ClusterShape) -> None:
    """Errors before any trial starts: missing custom resources, GPU request too big, node-local storage."""
    res = study.resources
    for name, amount in res.custom.items():
        if not any(node.get(name, 0) >= amount for node in shape.per_node):
            raise ClusterError(f"resources.custom.{name}: no node advertises {amount} of custom resource "
                               f"{name!r}; start nodes with --resources '{{\"{name}\": N}}' or remove it")
    if res.gpus_per_worker > 0:
        most = max((node.get("GPU", 0) for node in shape.per_node), default=0)
        if res.gpus_per_worker > most:
            raise ClusterError(f"resources.gpus_per_trial: {res.gpus_per_trial} GPUs over "
                               f"{res.workers_per_trial} worker(s) needs {res.gpus_per_worker} GPU(s) on one "
                               f"node, but the largest node has {most:g}")
    if shape.hosts > 1 and not study.storage_is_remote and not _is_shared_path(study.storage_path()):
        raise ClusterError(f"storage: {study.storage_path()} is node-local but the cluster spans {shape.hosts} "
                           f"hosts; use shared storage (an NFS path, s3://, gs://)")


def derive_max_concurrent(study: Study, shape: ClusterShape) -> int:
    """The study's max_concurrent, else cluster GPUs // GPUs per trial (CPUs // CPUs per trial when CPU-only)."""
    if study.max_concurrent:
        return study.max_concurrent
    res = study.resources
    if res.gpus_per_trial > 0:
        return max(1, int(shape.total.get("GPU", 0) // res.gpus_per_trial))
    return max(1, int(shape.total.get("CPU", 1) // res.cpus_per_trial))
