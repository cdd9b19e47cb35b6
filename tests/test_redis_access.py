"""The auto-pipelined Redis layer (shared/storage/redis_access) against real redis-server
processes: replies reach their own callers, redis-py's reply shapes, deadlines,
back-pressure, a dropped connection, a paused and a restarted server."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis import exceptions
from redis.asyncio import Redis

from devtools.local_processes import ProcessGroup, free_port, start_redis
from shared.storage import script_runner, scripts
from shared.storage.redis_access import Address, Client, Options, Outages, connect
from shared.storage.redis_access.connection import Connection
from shared.storage.redis_access.node import Node
from shared.storage.redis_access.server import ServerRouter


class Server:
    """One redis-server that a test may pause, kill and start again on the same port."""

    def __init__(self, data_dir: Path) -> None:
        self.group = ProcessGroup()
        self.port = free_port()
        self.data_dir = data_dir
        self.url = start_redis(self.group, self.port, data_dir, persistent=True)

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.group.processes[-1]

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def restart(self) -> None:
        start_redis(self.group, self.port, self.data_dir, persistent=True)

    def stop(self) -> None:
        self.group.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    started = Server(tmp_path / "redis")
    yield started
    started.process.send_signal(signal.SIGCONT)  # in case a test left it paused
    started.stop()


@pytest.fixture
async def admin(server: Server) -> AsyncIterator[Redis]:
    client = Redis.from_url(server.url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def client(server: Server) -> AsyncIterator[Client]:
    made = connect(server.url, timeout=0.3)
    yield made
    await made.aclose()


async def test_concurrent_callers_share_one_connection_and_get_their_own_replies(
    client: Client, admin: Redis
) -> None:
    await admin.mset({f"k{i}": str(i) for i in range(500)})
    found = await asyncio.gather(*(client.get(f"k{i}") for i in range(500)))
    assert found == [str(i) for i in range(500)]
    clients = await admin.client_list()
    assert len(clients) == 2  # this layer's one connection, and the admin's


async def test_commands_answer_as_redis_py_does(client: Client, admin: Redis) -> None:
    assert await client.ping() is True
    assert await client.set("s", "v", ex=60) is True
    assert await client.set("s", "w", nx=True) is None
    assert await client.get("s") == "v" == await admin.get("s")
    assert await client.mget("s", "missing") == ["v", None]
    assert await client.mget(["s"]) == ["v"]
    assert await client.sadd("set", "a", "b") == 2
    assert await client.smembers("set") == {"a", "b"} == await admin.smembers("set")
    assert await client.hset("h", mapping={"x": "1", "y": b"2"}) == 2
    assert await client.hgetall("h") == {"x": "1", "y": "2"} == await admin.hgetall("h")
    assert await client.hmget("h", ["x", "z"]) == ["1", None]
    assert await client.zadd("z", {"m": 5}) == 1
    assert await client.zadd("z", {"m": 3}, gt=True) == 0
    assert await admin.zscore("z", "m") == 5  # GT kept the greater score
    assert await client.expire("h", 60) is True
    assert await client.expire("missing", 60) is False
    assert await client.incr("n") == 1
    assert await client.delete("s", "h") == 2
    with pytest.raises(exceptions.ResponseError, match="WRONGTYPE"):
        await client.get("set")


async def test_a_reply_that_is_not_text_fails_its_caller_alone(
    client: Client, admin: Redis
) -> None:
    await admin.set("binary", b"\xff\xfe")
    await admin.set("text", "fine")
    found = await asyncio.gather(client.get("binary"), client.get("text"), return_exceptions=True)
    assert isinstance(found[0], exceptions.DataError)
    assert found[1] == "fine"


async def test_a_transaction_runs_as_one_block(client: Client, admin: Redis) -> None:
    async with client.pipeline(transaction=True) as pipe:
        pipe.set("t", 0, ex=60, nx=True)
        pipe.incr("t")
        pipe.smembers("nothing")
        assert await pipe.execute() == [True, 1, set()]
    async with client.pipeline(transaction=True) as pipe:
        pipe.incr("t")
        pipe.hset("t", "f", "v")  # WRONGTYPE at EXEC: that command alone fails
        replies = await pipe.execute(raise_on_error=False)
    assert replies[0] == 2
    assert isinstance(replies[1], exceptions.ResponseError)
    assert await admin.get("t") == "2"


async def test_scripts_are_sent_by_sha_and_again_in_full_after_a_flush(
    client: Client, admin: Redis
) -> None:
    assert await script_runner.run(client, "return ARGV[1]", [], ["one"]) == "one"
    await admin.script_flush()
    assert await script_runner.run(client, "return ARGV[1]", [], ["two"]) == "two"
    await admin.script_flush()
    answer = await script_runner.run_after(
        client,
        lambda pipe: pipe.set("before", "1"),
        "return redis.call('GET', KEYS[1])",
        ["before"],
        [],
    )
    assert answer == "1"


async def test_back_pressure_bounds_the_commands_in_flight(
    server: Server, admin: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    most = 0
    send_many = Connection.send_many

    def counting(self: Connection, commands: list[bytes]) -> list[asyncio.Future[object]]:
        nonlocal most
        futures = send_many(self, commands)
        most = max(most, len(self._pending))
        return futures

    monkeypatch.setattr(Connection, "send_many", counting)
    bounded = connect(server.url, max_in_flight=3)
    try:
        await admin.set("v", "x")
        assert await asyncio.gather(*(bounded.get("v") for _ in range(200))) == ["x"] * 200
    finally:
        await bounded.aclose()
    assert most == 3


async def test_waiting_for_room_is_bounded_by_the_deadline(server: Server) -> None:
    """With the connection full of slow (but punctual) replies, a caller waiting for room
    fails within the deadline instead of waiting behind every command ahead of it."""
    bounded = connect(server.url, timeout=0.3, max_in_flight=1)
    try:
        assert await bounded.ping() is True

        async def slow(i: int) -> float:
            started = time.monotonic()
            try:
                assert await bounded.execute_command("BLPOP", f"empty{i}", 0.05) is None
            except exceptions.TimeoutError:
                pass
            return time.monotonic() - started

        waits = await asyncio.gather(*(slow(i) for i in range(12)))
        assert max(waits) < 0.3 + 0.3 + 0.1, waits  # for room, then for the reply
        # Those that found no room were never sent: nothing was overdue, nothing poisoned.
        assert await bounded.ping() is True
    finally:
        await bounded.aclose()


async def test_a_cancelled_caller_does_not_shift_the_replies(client: Client, admin: Redis) -> None:
    await admin.mset({"a": "A", "b": "B"})
    slow = asyncio.ensure_future(client.execute_command("BLPOP", "empty-list", 0.2))
    first = asyncio.ensure_future(client.get("a"))
    await asyncio.sleep(0.05)
    first.cancel()
    assert await client.get("b") == "B"
    assert await slow is None
    assert first.cancelled()


async def test_a_connection_dropped_mid_batch_fails_its_commands_and_is_replaced(
    client: Client, admin: Redis
) -> None:
    await admin.set("k", "v")
    assert await client.get("k") == "v"
    in_flight = [
        asyncio.ensure_future(client.execute_command("BLPOP", "empty-list", 1)) for _ in range(5)
    ]
    await asyncio.sleep(0.05)
    await admin.client_kill_filter(_type="normal", skipme=True)
    outcomes = await asyncio.gather(*in_flight, return_exceptions=True)
    assert all(isinstance(o, exceptions.ConnectionError) for o in outcomes), outcomes
    # The next command opens a new connection; nothing of the old stream reaches it.
    assert await client.get("k") == "v"


async def test_a_reply_that_never_comes_fails_within_the_deadline_then_fast(
    server: Server, client: Client, admin: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tessera.redis")
    await admin.set("k", "v")
    assert await client.get("k") == "v"
    server.process.send_signal(signal.SIGSTOP)  # Redis stops answering; TCP stays up
    try:
        started = time.monotonic()
        with pytest.raises(exceptions.TimeoutError):
            await client.get("k")
        assert time.monotonic() - started < 0.6
        # Reconnecting cannot complete either: down, and from then on refused at once.
        with pytest.raises(exceptions.RedisError):
            await client.get("k")
        started = time.monotonic()
        for _ in range(100):
            with pytest.raises(exceptions.ConnectionError, match="unavailable"):
                await client.get("k")
        assert time.monotonic() - started < 0.1
    finally:
        server.process.send_signal(signal.SIGCONT)
    assert await _eventually(client.get, "k") == "v"
    lines = [r.getMessage() for r in caplog.records if r.name == "tessera.redis"]
    assert sum("unavailable" in line for line in lines) == 1, lines
    assert sum("available again" in line for line in lines) == 1, lines


async def test_a_caller_still_connecting_when_the_client_closes_gets_connection_error(
    server: Server,
) -> None:
    """Not CancelledError: the caller was not cancelled, and a request handler that
    catches RedisError must see this failure as the others."""
    client = connect(server.url, timeout=1)
    server.process.send_signal(signal.SIGSTOP)  # the handshake's PING goes unanswered
    connecting = asyncio.ensure_future(client.get("k"))
    await asyncio.sleep(0.1)
    await client.aclose()
    with pytest.raises(exceptions.ConnectionError, match="closed"):
        await connecting


async def test_a_restarted_server_is_used_again_without_a_restart_of_ours(
    server: Server, admin: Redis
) -> None:
    events: list[str] = []
    client = connect(
        server.url,
        timeout=0.3,
        outages=Outages(down=lambda: events.append("down"), up=lambda s: events.append("up")),
    )
    try:
        await admin.set("kept", "yes")
        assert await client.get("kept") == "yes"
        server.kill()
        with pytest.raises(exceptions.ConnectionError):
            await client.get("kept")
        with pytest.raises(exceptions.ConnectionError):
            await client.get("kept")
        server.restart()
        returned = time.monotonic()
        assert await _eventually(client.get, "kept") == "yes"  # the append-only file
        assert time.monotonic() - returned < 1.0
        assert events == ["down", "up"]
    finally:
        await client.aclose()


def _master_only(server: Server) -> Client:
    """A client that, as with Sentinel, refuses a server that is not a master."""
    node = Node.at(Address("127.0.0.1", server.port), Options(timeout=0.3, require_master=True))
    return Client(ServerRouter(node))


async def test_a_demoted_master_is_dropped_once_however_many_commands_it_refused(
    server: Server, admin: Redis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tessera.redis")
    new_master = Server(tmp_path / "new-master")
    client = _master_only(server)
    try:
        assert await client.set("k", "v") is True
        await admin.replicaof("127.0.0.1", new_master.port)  # demoted, connections kept
        refused = await asyncio.gather(
            *(client.set(f"k{i}", "v") for i in range(20)), return_exceptions=True
        )
        assert all(isinstance(r, exceptions.ReadOnlyError) for r in refused), refused
    finally:
        await client.aclose()
        new_master.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "tessera.redis"]
    assert sum("dropping the connection" in line for line in lines) == 1, lines


async def test_a_script_write_refused_by_a_demoted_master_drops_the_connection(
    server: Server, admin: Redis, tmp_path: Path
) -> None:
    """Redis 6 reports a script's write on a replica as a script error that wraps
    READONLY; the connection must go as for READONLY itself, or a service whose writes
    are all scripts (redeeming a code) would keep writing to the old master."""
    new_master = Server(tmp_path / "new-master")
    client = _master_only(server)
    write = "return redis.call('SET', KEYS[1], ARGV[1])"
    try:
        assert await script_runner.run(client, write, ["k"], ["1"]) == "OK"
        assert len(await admin.client_list(_type="normal")) == 2
        await admin.replicaof("127.0.0.1", new_master.port)
        with pytest.raises(exceptions.ResponseError, match="READONLY"):
            await script_runner.run(client, write, ["k"], ["2"])
        await asyncio.sleep(0.05)
        assert len(await admin.client_list(_type="normal")) == 1  # the admin's alone
        with pytest.raises(exceptions.ConnectionError, match="not the master"):
            await client.get("k")
    finally:
        await client.aclose()
        new_master.stop()


async def test_tesseras_own_scripts_run_on_the_layer(client: Client) -> None:
    """One of Tessera's own scripts, as the services run it."""
    family = "f" * 22
    deleted = await scripts.revoke_family(client, family=family, tombstone_ttl=60)
    assert deleted == 0


async def _eventually(call, *args, seconds: float = 3.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while True:
        try:
            return await call(*args)
        except exceptions.ConnectionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)
