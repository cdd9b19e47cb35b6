"""The auto-pipelined Redis layer on a Redis Cluster being resharded (ASK, then MOVED)
and on a Sentinel-monitored master that fails over: every command reaches the node that
owns its key, and no caller is ever given another command's answer."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import redis as sync_redis
from redis import exceptions
from redis.crc import key_slot

from devtools.local_processes import ProcessGroup, free_port, start_redis
from shared.storage.redis_access import Outages, connect
from tests.redis_topologies import (
    CLUSTER_BUS_OFFSET,
    SENTINEL_SERVICE,
    cluster_url,
    free_cluster_port,
    start_cluster,
    start_cluster_node,
    start_sentinel,
    wait_until,
)

T = TypeVar("T")


@pytest.fixture
def group() -> Iterator[ProcessGroup]:
    started = ProcessGroup()
    yield started
    started.stop()


def _node_id(port: int) -> str:
    with sync_redis.Redis(port=port, decode_responses=True) as node:
        return str(node.execute_command("CLUSTER", "MYID"))


def _owner_port(ports: list[int], slot: int) -> int:
    with sync_redis.Redis(port=ports[0], decode_responses=True) as node:
        for first, last, master, *_ in node.execute_command("CLUSTER", "SLOTS"):
            if first <= slot <= last:
                return int(master[1])
    raise AssertionError(f"no owner for slot {slot}")


def _to_migrate(ports: list[int], key: str) -> tuple[int, int, int]:
    """The slot of ``key``, the port of its owner, and of another master to move it to."""
    slot = key_slot(key.encode())
    source = _owner_port(ports, slot)
    return slot, source, next(p for p in ports if p != source)


def _redirections(port: int, kind: str) -> int:
    with sync_redis.Redis(port=port, decode_responses=True) as node:
        stats = node.info("errorstats")
    return int(stats.get(f"errorstat_{kind}", {}).get("count", 0))


async def test_cluster_resharding_is_followed_through_ask_and_moved(
    group: ProcessGroup, tmp_path: Path
) -> None:
    ports = start_cluster(group, tmp_path)
    client = connect(cluster_url(ports))
    try:
        key, other = "{reshard}moving", "{reshard}new"
        slot, source, target = _to_migrate(ports, key)
        assert await client.set(key, "value") is True
        values = {f"{{spread{i}}}": str(i) for i in range(60)}  # keys on every node
        for name, value in values.items():
            await client.set(name, value)

        # Migration under way: the key now lives on the target, the slot still on the
        # source, which answers ASK.
        source_id, target_id = _node_id(source), _node_id(target)
        with sync_redis.Redis(port=target) as node:
            node.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        with sync_redis.Redis(port=source) as node:
            node.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            node.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", key)
        asks = _redirections(source, "ASK")
        assert await client.get(key) == "value"
        assert await client.set(other, "created during the migration") is True
        assert _redirections(source, "ASK") > asks

        # Migration done: the source answers MOVED once, and the map is updated.
        for port in ports:
            with sync_redis.Redis(port=port) as node:
                node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        moved = _redirections(source, "MOVED")
        found = await asyncio.gather(client.get(key), client.get(other))
        assert list(found) == ["value", "created during the migration"]
        assert _redirections(source, "MOVED") > moved
        moved = _redirections(source, "MOVED")
        assert await client.get(key) == "value"
        assert _redirections(source, "MOVED") == moved  # straight to the new owner

        # Every other key still reaches its own value, concurrently and in pipelines.
        names = list(values)
        assert await asyncio.gather(*(client.get(n) for n in names)) == list(values.values())
        async with client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.get(name)
            assert await pipe.execute() == list(values.values())
    finally:
        await client.aclose()


def _start_migration(slot: int, source: int, target: int, keys: list[str]) -> None:
    """Begin moving ``slot`` from ``source`` to ``target``, as a reshard does, and move
    ``keys``: the source now answers ASK for a key it does not hold."""
    source_id, target_id = _node_id(source), _node_id(target)
    with sync_redis.Redis(port=target) as node:
        node.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
    with sync_redis.Redis(port=source) as node:
        node.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        node.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)


def _finish_migration(ports: list[int], slot: int, target: int) -> None:
    target_id = _node_id(target)
    for port in ports:
        with sync_redis.Redis(port=port) as node:
            node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)


def _move_slot(ports: list[int], slot: int, source: int, target: int, keys: list[str]) -> None:
    """Migrate ``slot`` and its ``keys`` from ``source`` to ``target``."""
    _start_migration(slot, source, target, keys)
    _finish_migration(ports, slot, target)


async def test_a_caller_cancelled_during_the_first_slot_map_load_leaves_reloading_working(
    group: ProcessGroup, tmp_path: Path
) -> None:
    ports = start_cluster(group, tmp_path)
    client = connect(cluster_url(ports))
    try:
        first = asyncio.ensure_future(client.get("{first}"))
        await asyncio.sleep(0)  # the first command is loading the slot map
        first.cancel()
        await asyncio.sleep(0.5)  # the load completes without it
        # Two keys of one node, in two slots, that both move to another node.
        source = _owner_port(ports, key_slot(b"{a0}"))
        moving = [
            name
            for name in (f"{{a{i}}}" for i in range(300))
            if _owner_port(ports, key_slot(name.encode())) == source
        ][:2]
        for name in moving:
            assert await client.set(name, name) is True
        target = next(p for p in ports if p != source)
        for name in moving:
            _move_slot(ports, key_slot(name.encode()), source, target, [name])

        moved = _redirections(source, "MOVED")
        assert await client.get(moving[0]) == moving[0]
        assert _redirections(source, "MOVED") == moved + 1
        await asyncio.sleep(0.5)  # the MOVED answer had the whole map reloaded
        assert await client.get(moving[1]) == moving[1]
        assert _redirections(source, "MOVED") == moved + 1  # straight to the new owner
    finally:
        await client.aclose()


async def test_a_transaction_follows_ask_during_a_migration(
    group: ProcessGroup, tmp_path: Path
) -> None:
    """Redeeming a code, storing an interaction, counting a login failure are MULTI/EXEC
    blocks; during a reshard they must reach the node that now holds their key."""
    ports = start_cluster(group, tmp_path)
    client = connect(cluster_url(ports))
    try:
        moved, created = "{tx}moved", "{tx}created"
        slot, source, target = _to_migrate(ports, moved)
        assert await client.set(moved, "1") is True
        _start_migration(slot, source, target, [moved])
        for name in (moved, created):
            async with client.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, 60)
                assert await pipe.execute() == [2 if name == moved else 1, True]
        _finish_migration(ports, slot, target)
        assert await client.mget(moved, created) == ["2", "1"]
    finally:
        await client.aclose()


def _add_replica(group: ProcessGroup, tmp_path: Path, ports: list[int], master: int) -> int:
    """A new cluster node, made the replica of ``master`` and in sync with it: its port."""
    taken = {p for port in ports for p in (port, port + CLUSTER_BUS_OFFSET)}
    replica = free_cluster_port(taken)
    start_cluster_node(group, replica, tmp_path)
    master_id = _node_id(master)
    with sync_redis.Redis(port=replica, decode_responses=True) as node:
        node.execute_command("CLUSTER", "MEET", "127.0.0.1", master)
        wait_until(
            "the replica did not meet its master",
            lambda: master_id in node.execute_command("CLUSTER", "NODES"),
            30,
        )
        node.execute_command("CLUSTER", "REPLICATE", master_id)
        wait_until(
            "the replica did not sync",
            lambda: node.info("replication").get("master_link_status") == "up",
            30,
        )
        replica_id = str(node.execute_command("CLUSTER", "MYID"))

    def known_to_all() -> bool:  # so that every master takes the replica's promotion
        for port in ports:
            with sync_redis.Redis(port=port, decode_responses=True) as node:
                if f"{replica_id} " not in node.execute_command("CLUSTER", "NODES"):
                    return False
        return True

    wait_until("the replica was not known to every master", known_to_all, 30)
    return replica


async def _once_the_replica_answers(read: Callable[[], Awaitable[T]]) -> T:
    """``read``'s answer once the cluster has failed over: until then it fails with the
    dead master's ConnectionError, a timeout (a loaded machine), or CLUSTERDOWN, the
    cluster's own view a moment after the takeover."""
    deadline = time.monotonic() + 15
    while True:
        try:
            return await read()
        except (exceptions.ConnectionError, exceptions.TimeoutError, exceptions.ClusterDownError):
            assert time.monotonic() < deadline, "the client never reached the replica"
            await asyncio.sleep(0.1)


def _cluster_with_a_replica(
    group: ProcessGroup, tmp_path: Path, key: str
) -> tuple[list[int], int, int]:
    """A cluster whose master of ``key`` has a replica, and ``key`` = "kept" on both:
    the masters' ports, that master's and the replica's."""
    ports = start_cluster(group, tmp_path)
    master = _owner_port(ports, key_slot(key.encode()))
    replica = _add_replica(group, tmp_path, ports, master)
    with sync_redis.Redis(port=master) as node:
        node.set(key, "kept")
        node.execute_command("WAIT", 1, 5000)
    return ports, master, replica


async def test_a_failed_master_is_replaced_by_its_replica_for_pipelines_too(
    group: ProcessGroup, tmp_path: Path
) -> None:
    key = "{failover}"
    ports, master, replica = _cluster_with_a_replica(group, tmp_path, key)
    client = connect(cluster_url(ports))
    try:
        assert await client.get(key) == "kept"
        process = group.processes[ports.index(master)]
        process.kill()
        process.wait()
        with sync_redis.Redis(port=replica) as node:
            node.execute_command("CLUSTER", "FAILOVER", "TAKEOVER")

        async def read_in_a_pipeline() -> list[str]:
            async with client.pipeline(transaction=False) as pipe:
                pipe.get(key)
                return await pipe.execute()

        # Only pipelines: a failed one has the slot map reloaded as a failed command does.
        assert await _once_the_replica_answers(read_in_a_pipeline) == ["kept"]
        assert await client.get(key) == "kept"
    finally:
        await client.aclose()


async def test_a_failed_master_that_its_replica_replaced_is_no_longer_tried(
    group: ProcessGroup, tmp_path: Path
) -> None:
    """Its outage ends for the metrics, and its probe stops, once no slot names it: a
    cluster node that comes back elsewhere (a new pod, a new address) never returns to
    the old one, and tessera_redis_unavailable would stay up for a healthy cluster."""
    key = "{failover}"
    ports, master, replica = _cluster_with_a_replica(group, tmp_path, key)
    events: list[str] = []
    client = connect(
        cluster_url([p for p in ports if p != master]),
        outages=Outages(down=lambda: events.append("down"), up=lambda s: events.append("up")),
    )
    try:
        assert await client.get(key) == "kept"
        process = group.processes[ports.index(master)]
        process.kill()
        process.wait()
        deadline = time.monotonic() + 5
        while events != ["down"]:  # the client has found the master gone
            assert time.monotonic() < deadline, events
            with pytest.raises((exceptions.ConnectionError, exceptions.ClusterDownError)):
                await client.get(key)
        with sync_redis.Redis(port=replica) as node:
            node.execute_command("CLUSTER", "FAILOVER", "TAKEOVER")
        assert await _once_the_replica_answers(lambda: client.get(key)) == "kept"
        deadline = time.monotonic() + 2
        while events != ["down", "up"]:
            assert time.monotonic() < deadline, events
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()


async def test_a_caller_waiting_for_the_slot_map_when_the_client_closes_gets_connection_error(
    group: ProcessGroup, tmp_path: Path
) -> None:
    ports = start_cluster(group, tmp_path)
    client = connect(cluster_url(ports))
    for process in group.processes:
        process.send_signal(signal.SIGSTOP)  # CLUSTER SLOTS goes unanswered
    try:
        loading = asyncio.ensure_future(client.get("{k}"))
        await asyncio.sleep(0.1)
        await client.aclose()
        with pytest.raises(exceptions.ConnectionError, match="closed"):
            await loading
    finally:
        for process in group.processes:
            process.send_signal(signal.SIGCONT)


async def test_a_cluster_that_is_down_costs_one_log_line_per_node_not_one_per_command(
    group: ProcessGroup, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tessera.redis")
    ports = start_cluster(group, tmp_path)
    client = connect(cluster_url(ports))
    try:
        names = [f"{{down{i}}}" for i in range(50)]
        for name in names:
            assert await client.set(name, "1") is True
        for process in group.processes:
            process.kill()
            process.wait()
        for name in names:
            with pytest.raises(exceptions.ConnectionError):
                await client.get(name)
            await asyncio.sleep(0.005)  # a background reload, if any, runs meanwhile
    finally:
        await client.aclose()
    lines = [r.getMessage() for r in caplog.records if r.name == "tessera.redis"]
    assert sum("unavailable" in line for line in lines) == len(ports), lines
    assert len(lines) <= len(ports) + 1, lines


def _failover_started(sentinel: sync_redis.Redis) -> bool:
    try:
        sentinel.sentinel_failover(SENTINEL_SERVICE)
    except exceptions.ResponseError as exc:
        if "NOGOODSLAVE" in str(exc):  # the replica's state not yet confirmed
            return False
        raise
    return True


async def test_sentinel_failover_moves_the_client_to_the_new_master(
    group: ProcessGroup, tmp_path: Path
) -> None:
    master, replica = free_port(), free_port()
    start_redis(group, master, tmp_path / "master", persistent=False)
    start_redis(
        group,
        replica,
        tmp_path / "replica",
        persistent=False,
        extra_args=["--replicaof", "127.0.0.1", str(master)],
    )

    def synced() -> bool:
        with sync_redis.Redis(port=replica, decode_responses=True) as node:
            link: object = node.info("replication")["master_link_status"]
            return link == "up"

    wait_until("the replica did not sync", synced, 30)
    sentinel = start_sentinel(group, tmp_path / "sentinel", master)
    with sync_redis.Redis(port=sentinel, decode_responses=True) as node:
        # Eligible for promotion once the sentinel has heard from the replica itself.
        wait_until(
            "the sentinel did not hear from the replica",
            lambda: any(
                r["flags"] == "slave" and r.get("master-link-status") == "ok"
                for r in node.sentinel_slaves(SENTINEL_SERVICE)
            ),
            30,
        )

    client = connect(f"redis+sentinel://127.0.0.1:{sentinel}/{SENTINEL_SERVICE}/0", timeout=0.5)
    try:
        assert await client.set("before", "1") is True
        with sync_redis.Redis(port=sentinel) as node:
            wait_until("no failover started", lambda: _failover_started(node), 30)
        written_on_new_master = False
        deadline = time.monotonic() + 30
        i = 0
        while not written_on_new_master:
            assert time.monotonic() < deadline, "the client never reached the new master"
            i += 1
            try:
                await client.set(f"k{i}", str(i))
                # Each caller gets the answer to its own command, never another's.
                assert await client.get(f"k{i}") == str(i)
            except (exceptions.ConnectionError, exceptions.ReadOnlyError, exceptions.TimeoutError):
                await asyncio.sleep(0.05)
                continue
            with sync_redis.Redis(port=replica, decode_responses=True) as node:
                written_on_new_master = node.get(f"k{i}") == str(i) and (
                    node.info("replication")["role"] == "master"
                )
            await asyncio.sleep(0.02)
        assert await client.get("before") == "1"
    finally:
        await client.aclose()
