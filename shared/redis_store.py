"""The one Redis connection pool of a service, opened and closed with the application."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from redis.asyncio import Redis

from shared.app_keys import REDIS, SETTINGS


def connect(url: str) -> Redis:
    # Timeouts, so that a Redis that hangs fails requests (and /readyz) instead of
    # holding them forever.
    return Redis.from_url(
        url,
        decode_responses=True,
        health_check_interval=30,
        socket_connect_timeout=2,
        socket_timeout=5,
    )


async def redis_context(app: web.Application) -> AsyncIterator[None]:
    redis = connect(app[SETTINGS].redis_url)
    app[REDIS] = redis
    yield
    await redis.aclose()
