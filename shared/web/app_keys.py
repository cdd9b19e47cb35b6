"""The typed application keys of what every service holds: its settings, its Redis
client, and both with its signing keys as one object. An object a web-layer module owns
(the client cache, the metrics, the drain...) has its key in that module, so this one
imports nothing above the storage layer."""

from __future__ import annotations

from aiohttp import web

from shared.config.settings import Settings
from shared.storage.redis_store import RedisClient
from shared.storage.tessera import Tessera

SETTINGS = web.AppKey("settings", Settings)
# A single Redis, a Sentinel-managed master, or a Redis Cluster (see shared.storage.redis_store).
REDIS: web.AppKey[RedisClient] = web.AppKey("redis")
# Settings, Redis and the JWT signing keys together (shared.storage.tessera), for the code
# that needs more than one of them: set with REDIS, once the service starts.
TESSERA = web.AppKey("tessera", Tessera)
