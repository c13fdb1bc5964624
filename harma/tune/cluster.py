"""Getting a Ray to run a study on, and checking the study fits it before anything starts.

No address (and no RAY_ADDRESS): start a local Ray bound to 127.0.0.1 with a capped object store and the
study's custom resources.  `auto`, `HOST:PORT` or `ray://HOST:PORT`: connect, after a TCP reachability check
so a wrong address is one clear error within seconds.  Then: every custom resource the study asks for must
exist on some node, a trial's per-worker GPU request must fit on one node, results storage must be shared
when the cluster spans several hosts, and `max_concurrent` derives from the cluster and the trial request.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from harma.tune.study import Study, StudyError

LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024
SHARED_FS_TYPES = ("nfs", "nfs4", "cifs", "smb3", "lustre", "gpfs", "ceph", "glusterfs", "beegfs", "fuse.",
                   "9p", "virtiofs", "efs", "wekafs")


class ClusterError(RuntimeError):
    """The Ray cluster cannot be reached or cannot run this study as asked."""


def trial_env() -> dict[str, str]:
    """Environment for every trial process: run in the driver's working directory (relative paths hold)."""
    return {"RAY_CHDIR_TO_TRIAL_DIR": "0"}


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"--address {address!r}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ClusterError(f"--address {address}: cannot reach a Ray cluster there ({exc}); is it running, "
                           f"and is the port open to this machine?") from None


def connect(study: Study, address: str | None) -> bool:
    """ray.init for the study; returns True when this call started a local Ray (the caller shuts it down)."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS")
    runtime_env = {"env_vars": trial_env()}
    os.environ.update(trial_env())
    if address:
        if address != "auto":
            _check_reachable(address)
        try:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
        except (ConnectionError, RuntimeError) as exc:
            raise ClusterError(f"--address {address}: cannot connect to Ray ({exc})") from None
        return False
    cpus = os.cpu_count() or 1
    custom = {name: float(max(cpus, study.max_concurrent or 0)) for name in study.resources.custom}
    ray.init(num_cpus=cpus, resources=custom, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
             include_dashboard=False, _node_ip_address="127.0.0.1", runtime_env=runtime_env,
             log_to_driver=False, configure_logging=False)
    return True


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
