"""A few seconds' memory of client records, for the token and introspection services,
which read the calling client (and introspection the token's client too) on every
request: a Redis round trip saved on each.

Every change to a client (``clients.save``, ``clients.delete``) is published on
``keys.CLIENT_CHANGES``; each service listens and forgets that client at once, so a
disabled or deleted client, or a new secret, takes effect on the next request. Nothing is
cached while the service is not listening (starting, or its subscription lost), and an
entry lives ``CACHE_SECONDS`` at most, so a missed message cannot keep a client alive
longer than that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisError

from shared import clients, keys, redis_store
from shared.app_keys import CLIENTS, REDIS, SETTINGS
from shared.clients import Client

if TYPE_CHECKING:
    from shared.redis_store import RedisClient

log = logging.getLogger("tessera.clients")

CACHE_SECONDS = 5.0
# Unknown ids are remembered too (a client retrying with a wrong id); the bound keeps a
# caller inventing ids from growing the cache.
MAX_ENTRIES = 10_000
RESUBSCRIBE_SECONDS = 1.0


class ClientCache:
    """Reads clients through ``redis``; hears of changes through ``subscriber``, a
    redis-py client (pub/sub, which the request-path client does not do)."""

    def __init__(self, redis: RedisClient, subscriber: Redis | RedisCluster) -> None:
        self._redis = redis
        self._subscriber = subscriber
        self._entries: dict[str, tuple[float, Client | None]] = {}
        # Bumped by every invalidation: a read that began before one is not cached.
        self._generation = 0
        self.listening = False
        self._stopping = False
        self._listener: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, client_id: str) -> Client | None:
        """The client as ``clients.get`` returns it, at most ``CACHE_SECONDS`` old."""
        if self.listening:
            entry = self._entries.get(client_id)
            if entry is not None and entry[0] > time.monotonic():
                return entry[1]
        generation = self._generation
        client = await clients.get(self._redis, client_id)
        if self.listening and generation == self._generation:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[client_id] = (time.monotonic() + CACHE_SECONDS, client)
        return client

    def forget(self, client_id: str | None = None) -> None:
        """Drop one client, or (None) all of them."""
        self._generation += 1
        if client_id is None:
            self._entries.clear()
        else:
            self._entries.pop(client_id, None)

    def start(self) -> None:
        self._listener = asyncio.create_task(self._follow_changes(), name="client-changes")

    async def stop(self) -> None:
        """Stop listening. The flag is for a cancellation that gets lost: one that lands
        as redis-py's read timeout expires can be taken for that timeout (Python 3.11);
        the loop then ends at its next turn."""
        self._stopping = True
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.wait({self._listener})

    async def _follow_changes(self) -> None:
        """Listen for changed clients until stopped, subscribing again after a loss. A
        loss is logged once, not at every failed attempt while Redis is away."""
        said_off = False
        while not self._stopping:
            pubsub = None
            try:
                subscriber = self._subscriber
                if isinstance(subscriber, RedisCluster):
                    # A cluster client picks the subscription's node from its slot map,
                    # which it loads on first use: load it first.
                    await subscriber.initialize()
                pubsub = subscriber.pubsub()
                await pubsub.subscribe(keys.CLIENT_CHANGES)
                while not self.listening and not self._stopping:
                    # Cache only once Redis confirms the subscription: from then on no
                    # change can go unheard. Reads begun before are not kept.
                    message = await pubsub.get_message(timeout=RESUBSCRIBE_SECONDS)
                    if message is not None and message["type"] == "subscribe":
                        self.forget()
                        self.listening = True
                        said_off = False
                while not self._stopping:
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=RESUBSCRIBE_SECONDS
                    )
                    if message is not None and message["type"] == "message":
                        self.forget(message["data"])
            except (RedisError, OSError) as exc:
                if not said_off:
                    log.warning("client cache off until Redis answers again: %s", exc)
                    said_off = True
            except Exception:
                # Whatever else goes wrong, caching stays off and the listener retries.
                log.exception("client cache off: listening for client changes failed")
            finally:
                self.listening = False
                self.forget()
                if pubsub is not None:
                    await pubsub.aclose()
            if not self._stopping:
                await asyncio.sleep(RESUBSCRIBE_SECONDS)


async def client_cache_context(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context, after the Redis one: the cache and its listener, which has a
    redis-py client of its own (the request-path client does no pub/sub)."""
    subscriber = redis_store.connect(app[SETTINGS].redis_url)
    cache = ClientCache(app[REDIS], subscriber)
    app[CLIENTS] = cache
    cache.start()
    yield
    await cache.stop()
    await subscriber.aclose()
