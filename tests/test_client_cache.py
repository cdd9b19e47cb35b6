"""The token and introspection services' client cache (shared/web/client_cache.py), on the
real Redis: what it keeps, and that a change, published by ``clients.save`` or
``clients.delete``, reaches it through the listener (shared/web/client_changes.py). That the
services refuse a disabled or deleted client on the very next request is tested with
each endpoint (tests/test_client_credentials_grant, test_introspection, test_revocation,
test_refresh_token_grant)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import orjson
import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from devtools.local_processes import free_port
from shared.storage import clients, keys
from shared.web import client_cache, client_changes
from shared.web.client_cache import ClientCache
from shared.web.client_changes import ClientChanges
from tests.records import make_client, make_scope


async def eventually(check: Callable[[], bool], seconds: float = 3) -> None:
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not within the time allowed")


@pytest.fixture
async def cache(redis: Redis) -> AsyncIterator[ClientCache]:
    found = ClientCache(redis)
    changes = ClientChanges(redis, [found])
    changes.start()
    await eventually(lambda: found.listening)
    yield found
    await changes.stop()


async def _rename_behind_its_back(redis: Redis, client_id: str, name: str) -> None:
    """Change the stored record without announcing it (``clients.save`` would), as
    nothing in Tessera does: what the cache answers then shows whether it answered from
    memory."""
    record = await clients.get(redis, client_id)
    assert record is not None
    await redis.set(keys.client(client_id), orjson.dumps(replace(record, name=name)))


async def test_a_listening_cache_answers_from_memory(redis: Redis, cache: ClientCache) -> None:
    registered = await make_client(redis, [await make_scope(redis)])
    first = await cache.get(registered.client_id)
    assert first is not None
    await _rename_behind_its_back(redis, registered.client_id, "renamed quietly")
    again = await cache.get(registered.client_id)
    assert again is not None
    assert again.name == first.name


async def test_a_published_change_is_seen_at_once(redis: Redis, cache: ClientCache) -> None:
    registered = await make_client(redis, [await make_scope(redis)])
    assert (await cache.get(registered.client_id)).enabled  # type: ignore[union-attr]
    await clients.set_enabled(redis, registered.client_id, False)

    async def disabled() -> bool:
        found = await cache.get(registered.client_id)
        return found is not None and not found.enabled

    for _ in range(50):
        if await disabled():
            break
        await asyncio.sleep(0.02)
    assert await disabled()

    await clients.delete(redis, registered.client_id)
    for _ in range(50):
        if await cache.get(registered.client_id) is None:
            break
        await asyncio.sleep(0.02)
    assert await cache.get(registered.client_id) is None


async def test_nothing_is_kept_before_the_subscription_is_confirmed(redis: Redis) -> None:
    registered = await make_client(redis, [await make_scope(redis)])
    idle = ClientCache(redis)  # followed by no listener: not listening
    await idle.get(registered.client_id)
    await _rename_behind_its_back(redis, registered.client_id, "renamed quietly")
    found = await idle.get(registered.client_id)
    assert found is not None
    assert found.name == "renamed quietly"


async def test_an_entry_lives_no_longer_than_the_bound(
    redis: Redis, cache: ClientCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_cache, "CACHE_SECONDS", 0.2)
    registered = await make_client(redis, [await make_scope(redis)])
    await cache.get(registered.client_id)
    await _rename_behind_its_back(redis, registered.client_id, "renamed quietly")
    await asyncio.sleep(0.3)
    found = await cache.get(registered.client_id)
    assert found is not None
    assert found.name == "renamed quietly"


async def test_a_lost_subscription_empties_the_cache_until_it_is_back(
    redis: Redis, cache: ClientCache
) -> None:
    registered = await make_client(redis, [await make_scope(redis)])
    await cache.get(registered.client_id)
    # Whatever happens while the subscription is down goes unheard: Redis drops it.
    await redis.client_kill_filter(_type="pubsub")
    await eventually(lambda: not cache.listening)
    await _rename_behind_its_back(redis, registered.client_id, "renamed while deaf")
    found = await cache.get(registered.client_id)
    assert found is not None
    assert found.name == "renamed while deaf"
    await eventually(lambda: cache.listening)


async def test_unknown_ids_cannot_grow_it_without_bound(
    redis: Redis, cache: ClientCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_cache, "MAX_ENTRIES", 5)
    for number in range(12):
        assert await cache.get(f"invented-{number}") is None
    assert len(cache) <= 5


async def test_a_listener_that_cannot_subscribe_says_so_once(
    redis: Redis, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis away: the listener tries again every second (a tenth of one here, so three
    attempts take no time), and logs the loss once."""
    monkeypatch.setattr(client_changes, "RESUBSCRIBE_SECONDS", 0.1)
    # No retries of redis-py's own, so each attempt of the listener fails at once.
    away = Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    idle = ClientCache(redis)
    changes = ClientChanges(away, [idle])
    with caplog.at_level(logging.WARNING, logger="tessera.clients"):
        changes.start()
        await asyncio.sleep(client_changes.RESUBSCRIBE_SECONDS * 2.5)  # three attempts
        await changes.stop()
    await away.aclose()
    lines = [r.getMessage() for r in caplog.records if r.name == "tessera.clients"]
    assert len(lines) == 1, lines
    assert lines[0].startswith("client cache off until Redis answers again")
    assert not idle.listening
    assert not changes.listening
