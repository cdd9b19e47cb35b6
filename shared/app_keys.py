"""Every typed application key of the three services, in one place."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from shared.settings import Settings
from shared.signing_keys import KeySet

SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", Redis)
# The JWT signing keys (token service) or verification keys (introspection); None when
# TESSERA_SIGNING_KEYS is not set.
SIGNING_KEYS: web.AppKey[KeySet | None] = web.AppKey("signing_keys")
