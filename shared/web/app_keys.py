"""The typed application keys of what every service holds: its settings, its Redis
client, its signing keys. An object a web-layer module owns (the client cache, the
metrics, the drain...) has its key in that module, so this one imports nothing above
the storage layer."""

from __future__ import annotations

from aiohttp import web

from shared.config.settings import Settings
from shared.security.signing_keys import KeySet
from shared.storage.rate_limits import RecentRefusals
from shared.storage.redis_store import RedisClient

SETTINGS = web.AppKey("settings", Settings)
# A single Redis, a Sentinel-managed master, or a Redis Cluster (see shared.storage.redis_store).
REDIS: web.AppKey[RedisClient] = web.AppKey("redis")
# The JWT signing keys (token service) or verification keys (introspection); None when
# TESSERA_SIGNING_KEYS is not set.
SIGNING_KEYS: web.AppKey[KeySet | None] = web.AppKey("signing_keys")
# Client addresses this process refused lately for failing client authentication
# (shared.web.client_auth), refused again without a secret compared.
CLIENT_AUTH_REFUSALS: web.AppKey[RecentRefusals] = web.AppKey("client_auth_refusals")
