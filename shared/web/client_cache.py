"""A few seconds' memory of client records, for the token and introspection services,
which read the calling client (and introspection the token's client too) on every
request: a Redis round trip saved on each.

It follows client changes (``shared.web.client_changes``): a client whose change is announced
is forgotten at once, so a disabled or deleted client, or a new secret, takes effect on
the next request. Nothing is cached while the service is not listening (starting, or its
subscription lost), and an entry lives ``CACHE_SECONDS`` at most, so a missed message
cannot keep a client alive longer than that.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiohttp import web

from shared.storage import clients
from shared.storage.clients import Client
from shared.web.app_keys import REDIS

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient

CACHE_SECONDS = 5.0
# Unknown ids are remembered too (a client retrying with a wrong id); the bound keeps a
# caller inventing ids from growing the cache.
MAX_ENTRIES = 10_000


class ClientCache:
    """Reads clients through ``redis``; a ``ClientFollower`` of the changes."""

    name = "client cache"

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._entries: dict[str, tuple[float, Client | None]] = {}
        # Bumped by every invalidation: a read that began before one is not cached.
        self._generation = 0
        self.listening = False

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

    async def follow_all(self) -> None:
        self.forget()
        self.listening = True

    async def changed(self, client_id: str) -> None:
        self.forget(client_id)

    def unfollow(self) -> None:
        self.listening = False
        self.forget()


# The token and introspection services' recently read clients.
CLIENTS: web.AppKey[ClientCache] = web.AppKey("clients")


def client_cache(app: web.Application) -> ClientCache:
    """The service's cache, for ``client_changes.follow_client_changes``."""
    cache = ClientCache(app[REDIS])
    app[CLIENTS] = cache
    return cache
