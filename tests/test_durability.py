"""What a Redis process crash keeps (README, "Durability"): Redis runs with its
append-only file, as ``make run`` starts it (``appendfsync everysec``), and is SIGKILLed
right after each security-relevant write, then started again from its file. The code
stays redeemed, the refresh token rotated, the token revoked: none can be used again.

(A machine crash can lose the last second of writes; no test here can cut the power.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from devtools.local_processes import ProcessGroup, ensure_signing_key, free_port, start_redis
from tests.assertions import assert_error
from tests.flows import exchange, is_active, obtain_code, refresh, revoke
from tests.records import make_resource_server, make_setup
from tests.stack import Stack, connect_single_server, start_stack


@dataclass
class DurableStack:
    group: ProcessGroup
    redis_port: int
    redis_dir: Path
    stack: Stack

    def crash_redis(self) -> None:
        """SIGKILL, as the out-of-memory killer stops it, and start it again from its
        append-only file on the same port."""
        redis = self.group.processes[0]
        redis.kill()
        redis.wait()
        start_redis(self.group, self.redis_port, self.redis_dir, persistent=True)
        # In its old place, first, so that the group stops the services before it.
        self.group.processes[0] = self.group.processes.pop()


@pytest.fixture(scope="module")
def durable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DurableStack]:
    group = ProcessGroup()
    try:
        port, data = free_port(), tmp_path_factory.mktemp("durable-redis")
        url = start_redis(group, port, data, persistent=True)
        stack = start_stack(
            group, url, ensure_signing_key(tmp_path_factory.mktemp("keys")), log_prefix="durable-"
        )
        yield DurableStack(group, port, data, stack)
    finally:
        group.stop()


@pytest.fixture
async def store(durable: DurableStack) -> AsyncIterator[Redis]:
    client = connect_single_server(durable.stack.redis_url)
    yield client
    await client.aclose()


async def crash(durable: DurableStack, store: Redis, http: aiohttp.ClientSession) -> None:
    # Redis writes a command to its file before it answers, unless the disk lags behind a
    # fsync: then it holds the write back for up to 2 s (README). Wait that out, since
    # this tests what a process crash keeps, not the disk.
    for _ in range(100):
        if not (await store.info("persistence"))["aof_buffer_length"]:
            break
        await asyncio.sleep(0.05)
    before = (await store.info("server"))["run_id"]
    durable.crash_redis()
    await store.connection_pool.disconnect()
    assert (await store.info("server"))["run_id"] != before  # a new Redis process
    deadline = time.monotonic() + 10
    for service in (durable.stack.token, durable.stack.introspect):
        while True:
            async with http.get(f"{service}/readyz") as ready:
                if ready.status == 200:
                    break
            assert time.monotonic() < deadline, f"{service} not ready after Redis came back"
            await asyncio.sleep(0.1)


async def test_a_redeemed_code_stays_redeemed(
    durable: DurableStack, store: Redis, http: aiohttp.ClientSession
) -> None:
    stack = durable.stack
    s = await make_setup(store)
    api = await make_resource_server(store, [s.scope])
    code = await obtain_code(http, stack, s)
    issued = await exchange(http, stack, s.client, code)
    assert issued.status == 200, issued.body

    await crash(durable, store, http)

    assert await is_active(http, stack, api, issued.body["access_token"])
    # RFC 6749 §4.1.2: a replay is refused and revokes what the code gave, which only a
    # code still marked used can tell (an unused one would give new tokens).
    assert_error(await exchange(http, stack, s.client, code), 400, "invalid_grant")
    assert not await is_active(http, stack, api, issued.body["access_token"])


async def test_a_rotated_refresh_token_stays_rotated(
    durable: DurableStack, store: Redis, http: aiohttp.ClientSession
) -> None:
    stack = durable.stack
    s = await make_setup(store, refresh_count=3)
    api = await make_resource_server(store, [s.scope])
    issued = await exchange(http, stack, s.client, await obtain_code(http, stack, s))
    old = issued.body["refresh_token"]
    renewed = await refresh(http, stack, s.client, old)
    assert renewed.status == 200, renewed.body

    await crash(durable, store, http)

    assert await is_active(http, stack, api, renewed.body["access_token"])
    # RFC 9700 §4.14.2: the old token, presented again, is a reuse: refused, and the
    # grant revoked, the tokens of the rotation included.
    assert_error(await refresh(http, stack, s.client, old), 400, "invalid_grant")
    assert not await is_active(http, stack, api, renewed.body["access_token"])


async def test_a_revoked_token_stays_revoked(
    durable: DurableStack, store: Redis, http: aiohttp.ClientSession
) -> None:
    stack = durable.stack
    s = await make_setup(store, refresh_count=1)
    api = await make_resource_server(store, [s.scope])
    issued = await exchange(http, stack, s.client, await obtain_code(http, stack, s))
    kept = await exchange(http, stack, s.client, await obtain_code(http, stack, s))
    status, _, _ = await revoke(http, stack, s.client, issued.body["access_token"])
    assert status == 200

    await crash(durable, store, http)

    assert await is_active(http, stack, api, kept.body["access_token"])  # another grant
    assert not await is_active(http, stack, api, issued.body["access_token"])
    assert_error(
        await refresh(http, stack, s.client, issued.body["refresh_token"]), 400, "invalid_grant"
    )
