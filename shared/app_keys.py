"""Every typed application key of the three services, in one place."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from shared.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", Redis)
