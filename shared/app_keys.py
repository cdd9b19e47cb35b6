"""Every typed application key of the three services, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from redis.asyncio import Redis

from shared.settings import Settings

if TYPE_CHECKING:
    # Only for the annotations: these modules import this one.
    from shared.metrics import Metrics
    from shared.shutdown import Drain

SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", Redis)
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
DRAIN: web.AppKey[Drain] = web.AppKey("drain")
