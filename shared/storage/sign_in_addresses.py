"""The addresses of a username's sign-ins, for the sign-in limits (``shared.web.login_throttle``,
README "Sign-in limits"): those it is *known* at, having signed in there lately, and those
it was tried from in the current window, so ``tessera user unlock`` finds their failure
counts without scanning Redis.

A username comes as its digest (``login_throttle.username_digest``): people type their
password into the username field, and it must not land in Redis in clear. An address is
the client address as the limits count it (``shared.web.client_address.limit_subject``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from shared.storage import keys

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient


async def is_known(redis: RedisClient, name: str, address: str) -> bool:
    """Whether the username signed in from ``address`` within the known-address lifetime."""
    return bool(await redis.exists(keys.login_known_address(name, address)))


async def make_known(redis: RedisClient, name: str, address: str, lifetime: int) -> None:
    """The username signed in from ``address``: known there for ``lifetime`` seconds."""
    await redis.set(keys.login_known_address(name, address), 1, ex=lifetime)


async def note_tried(redis: RedisClient, name: str, address: str, seconds: int) -> None:
    """The username was tried from ``address``: listed for ``seconds``, as long as the
    per-(username, address) count it may hold (its window)."""
    await asyncio.gather(
        redis.sadd(keys.login_addresses(name), address),
        redis.expire(keys.login_addresses(name), seconds),
    )


async def tried(redis: RedisClient, name: str) -> set[str]:
    """The addresses the username was tried from in the current window."""
    return {str(address) for address in await redis.smembers(keys.login_addresses(name))}


async def forget_tried(redis: RedisClient, name: str) -> None:
    await redis.delete(keys.login_addresses(name))
