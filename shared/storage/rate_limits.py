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
import time
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


class RecentRefusals:
    """Subjects this process refused lately, until their window ends: checked in memory
    before work that a refused subject must not get (a secret compared), so requests that
    never fail pay no Redis command for the limit. Another replica learns of a subject at
    its first failure there. Bounded: past ``capacity`` the ended ones are dropped, then
    the oldest."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._until: dict[str, float] = {}
        self._capacity = capacity
        self._last_end = -math.inf

    def any_held(self) -> bool:
        """Whether any refusal may still hold; once the last has ended all are forgotten."""
        if self._until and time.monotonic() >= self._last_end:
            self._until.clear()
        return bool(self._until)

    def refused(self, subject: str) -> int | None:
        """The seconds ``subject`` remains refused, or None."""
        until = self._until.get(subject)
        if until is None:
            return None
        left = until - time.monotonic()
        if left <= 0:
            del self._until[subject]
            return None
        return max(1, math.ceil(left))

    def refuse(self, subject: str, seconds: int) -> None:
        if len(self._until) >= self._capacity:
            now = time.monotonic()
            self._until = {s: u for s, u in self._until.items() if u > now}
            while len(self._until) >= self._capacity:
                del self._until[next(iter(self._until))]
        self._until.pop(subject, None)  # re-inserted last: the dict stays in time order
        self._until[subject] = until = time.monotonic() + seconds
        self._last_end = max(self._last_end, until)
