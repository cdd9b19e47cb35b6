"""Rate limits counted in Redis, so that every replica shares them.

A fixed window per (limit, subject): the first event starts a window of ``Rate.seconds``
and at most ``Rate.count`` events pass in it; past that the caller is refused with the
seconds left in the window, for ``Retry-After`` (RFC 6585 §4). One script both counts and
reads the window, so a limit costs one command, auto-pipelined with the request's others.

Why not the ``limits`` library: its asynchronous Redis storage brings a client of its
own (coredis or a redis-py pool) and its own URL forms, so its counting would bypass the
Redis access layer's deadlines, back-pressure and fast failure, and Tessera's one
configuration of standalone, Sentinel and Cluster Redis (``shared.config.redis_urls``); what it
would do here is the script below.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from shared.domain.rates import Rate
from shared.storage import keys, scripts

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient


async def hit(redis: RedisClient, limit: str, rate: Rate, subject: str) -> int | None:
    """Count one event of ``subject`` against ``limit``: None while within ``rate``, else
    the whole seconds until its window ends (at least 1)."""
    if not rate.enabled:
        return None
    count, left_ms = await scripts.count_in_window(
        redis, counter=keys.rate_counter(limit, subject), window_ms=rate.seconds * 1000
    )
    if int(count) <= rate.count:
        return None
    return max(1, math.ceil(int(left_ms) / 1000))


async def give_back(redis: RedisClient, limit: str, subject: str) -> None:
    """Uncount one event ``hit`` counted (it turned out not to be one the limit is for,
    such as a sign-in that succeeded); nothing once its window has ended."""
    await scripts.uncount_in_window(redis, counter=keys.rate_counter(limit, subject))


async def reset(redis: RedisClient, limit: str, subject: str) -> None:
    """Start ``subject``'s count of ``limit`` again: the next event opens a new window."""
    await redis.delete(keys.rate_counter(limit, subject))


async def exhausted(redis: RedisClient, limit: str, rate: Rate, subject: str) -> int | None:
    """Whether ``subject`` has used up ``limit`` already, counting nothing: None, or the
    seconds until its window ends."""
    if not rate.enabled:
        return None
    key = keys.rate_counter(limit, subject)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(key)
        pipe.pttl(key)
        count, left_ms = await pipe.execute()
    if count is None or int(count) <= rate.count or int(left_ms) < 0:
        return None
    return max(1, math.ceil(int(left_ms) / 1000))


async def reached(redis: RedisClient, limit: str, rate: Rate, subject: str) -> bool:
    """Whether ``subject`` has used up ``limit`` in the current window, so that the next
    event ``hit`` counts would be refused; counting nothing."""
    if not rate.enabled:
        return False
    count = await redis.get(keys.rate_counter(limit, subject))
    return count is not None and int(count) >= rate.count
