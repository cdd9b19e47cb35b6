"""Hearing of client changes: what a service keeps in memory from client records is told
when a client changes, so it never answers from a stale record.

Every change to a client (``clients.save``, ``clients.delete``) is published on
``keys.CLIENT_CHANGES``. ``ClientChanges`` subscribes and tells its followers: once Redis
confirms the subscription, ``follow_all`` (from then on no change can go unheard, so a
follower may trust what it reads); for each message, ``changed`` with the client's id;
and when the subscription is lost (Redis away, the service stopping), ``unfollow``: a
follower then trusts nothing it kept until the next ``follow_all``.

The followers: the token and introspection services' client cache
(``shared.web.client_cache``), and the allowed browser origins of the token and authorize
services (``shared.web.browser_origins``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

from aiohttp import web
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisError

from shared.storage import keys, redis_store
from shared.web.app_keys import SETTINGS

log = logging.getLogger("tessera.clients")

RESUBSCRIBE_SECONDS = 1.0


class ClientFollower(Protocol):
    # Named in the log line that says it is off while Redis is away.
    name: str

    async def follow_all(self) -> None:
        """Listening (again): forget everything, and read what is needed now."""

    async def changed(self, client_id: str) -> None:
        """This client changed (or was deleted)."""

    def unfollow(self) -> None:
        """Not listening: forget everything, and keep nothing until ``follow_all``."""


class ClientChanges:
    """Listens on ``subscriber``, a redis-py client (pub/sub, which the request-path
    client does not do), for ``followers``."""

    def __init__(self, subscriber: Redis | RedisCluster, followers: Sequence[ClientFollower]):
        self._subscriber = subscriber
        self._followers = list(followers)
        self.listening = False
        self._stopping = False
        self._listener: asyncio.Task[None] | None = None

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
                # Pub/sub stays here, beside its followers (tests/test_layers.py allows it).
                pubsub = subscriber.pubsub()
                await pubsub.subscribe(keys.CLIENT_CHANGES)
                while not self.listening and not self._stopping:
                    # Trusted only once Redis confirms the subscription: from then on no
                    # change can go unheard. Reads begun before are not kept.
                    message = await pubsub.get_message(timeout=RESUBSCRIBE_SECONDS)
                    if message is not None and message["type"] == "subscribe":
                        for follower in self._followers:
                            await follower.follow_all()
                        self.listening = True
                        said_off = False
                while not self._stopping:
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=RESUBSCRIBE_SECONDS
                    )
                    if message is not None and message["type"] == "message":
                        for follower in self._followers:
                            await follower.changed(message["data"])
            except (RedisError, OSError) as exc:
                if not said_off:
                    log.warning("%s off until Redis answers again: %s", self._names(), exc)
                    said_off = True
            except Exception:
                # Whatever else goes wrong, the followers stay off and the listener retries.
                log.exception("%s off: listening for client changes failed", self._names())
            finally:
                self.listening = False
                for follower in self._followers:
                    follower.unfollow()
                if pubsub is not None:
                    await pubsub.aclose()
            if not self._stopping:
                await asyncio.sleep(RESUBSCRIBE_SECONDS)

    def _names(self) -> str:
        return " and ".join(follower.name for follower in self._followers)


# Makes a follower for the application and puts it where its handlers find it (an AppKey).
MakeFollower = Callable[[web.Application], ClientFollower]


def follow_client_changes(
    *makers: MakeFollower,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context, after the Redis one: the followers ``makers`` make, and one
    listener for them all, with a redis-py client of its own."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        subscriber = redis_store.connect(app[SETTINGS].redis_url)
        changes = ClientChanges(subscriber, [make(app) for make in makers])
        changes.start()
        yield
        await changes.stop()
        await subscriber.aclose()

    return context
