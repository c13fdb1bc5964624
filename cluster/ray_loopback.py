"""Run the `ray` CLI with this machine's node IP pinned to loopback (used by cluster/local.sh).

On Linux, `ray start` rewrites 127.0.0.1 / localhost (in --node-ip-address and in --address)
to the host's routable interface IP, so a "local" cluster binds and talks on the LAN address.
The switch that keeps Ray on loopback, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, also makes
`ray start --address=...` refuse to add a worker node. This wrapper keeps the loopback
behaviour for the node being started while still allowing worker nodes: it resolves the local
node IP to loopback and lets the multi-node check pass, then hands over to Ray's own CLI.
Child processes (raylet, agents, workers) inherit RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 from
local.sh, so anything they connect to also resolves to loopback.

Usage: python cluster/ray_loopback.py start --block --node-ip-address=127.0.0.1 ...
"""

from __future__ import annotations

import sys


def _pin_loopback() -> None:
    from ray._common.network_utils import get_localhost_ip
    from ray._private import ray_constants, services

    ray_constants.ENABLE_RAY_CLUSTER = True  # let `ray start --address=...` add a node

    def loopback_node_ip(address: str | None = None) -> str:
        return get_localhost_ip()

    services.get_node_ip_address = loopback_node_ip


def main() -> int:
    _pin_loopback()
    from ray.scripts.scripts import main as ray_cli

    sys.argv[0] = "ray"
    return ray_cli()


if __name__ == "__main__":
    sys.exit(main())
