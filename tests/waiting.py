"""Waiting for what happens a few milliseconds after a request is answered: a client's
change reaching the services' caches. A poll of the condition, never a sleep of a fixed
length."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
from redis.asyncio import Redis

from tests.flows import origin_allowed
from tests.records import make_client, unique
from tests.stack import Stack

Heard = TypeVar("Heard")


async def until_heard(
    attempt: Callable[[], Awaitable[Heard]], heard: Callable[[Heard], bool]
) -> Heard:
    """The last answer of ``attempt``, repeated until ``heard`` says it follows a client's
    change (for 5 s at most): the token and introspection services hear of a change a few
    milliseconds after it is saved (``shared/web/client_changes.py``), and until then answer
    from the record they read before. The caller asserts on what is returned."""
    for _ in range(250):
        answer = await attempt()
        if heard(answer):
            break
        await asyncio.sleep(0.02)
    return answer


async def until_origin(
    http: aiohttp.ClientSession, stack: Stack, origin: str, *, allowed: bool
) -> None:
    """Wait until the services allow (or refuse) ``origin``: they hear of a client's
    change a few milliseconds after it is published."""
    for _ in range(250):
        if await origin_allowed(http, stack, origin) is allowed:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{origin} still {'refused' if allowed else 'allowed'}")


async def until_changes_heard(
    http: aiohttp.ClientSession, stack: Stack, redis: Redis, scope: str
) -> None:
    """Wait until the token and authorize services have heard of every client change
    announced so far, for a test whose next request would change what it waits for (a
    refresh rotates its token): each service hears the changes in the order they were
    announced (``shared/web/client_changes.py``), so once both allow the origin of a public
    client registered now, for ``scope``, they have heard every change before it."""
    origin = f"https://{unique('heard')}.example.com"
    await make_client(redis, [scope], client_type="public", redirect_uris=[f"{origin}/cb"])
    await until_origin(http, stack, origin, allowed=True)
