"""Every typed application key of the three services, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from shared.settings import Settings
from shared.signing_keys import KeySet

if TYPE_CHECKING:
    # Only for the annotations: these modules import this one.
    from shared.browser_origins import BrowserOrigins
    from shared.client_cache import ClientCache
    from shared.metrics import Metrics
    from shared.password_checks import PasswordChecks
    from shared.rate_limits import RecentRefusals
    from shared.redis_store import RedisClient
    from shared.shutdown import Drain

SETTINGS = web.AppKey("settings", Settings)
# A single Redis, a Sentinel-managed master, or a Redis Cluster (see shared.redis_store).
REDIS: web.AppKey[RedisClient] = web.AppKey("redis")
# The token and introspection services' recently read clients (shared.client_cache).
CLIENTS: web.AppKey[ClientCache] = web.AppKey("clients")
# The token and authorize services' allowed browser origins (shared.browser_origins).
BROWSER_ORIGINS: web.AppKey[BrowserOrigins] = web.AppKey("browser_origins")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
DRAIN: web.AppKey[Drain] = web.AppKey("drain")
# The authorize and token services' argon2 threads and the lines before them.
PASSWORD_CHECKS: web.AppKey[PasswordChecks] = web.AppKey("password_checks")
# The JWT signing keys (token service) or verification keys (introspection); None when
# TESSERA_SIGNING_KEYS is not set.
SIGNING_KEYS: web.AppKey[KeySet | None] = web.AppKey("signing_keys")
# Client addresses this process refused lately for failing client authentication
# (shared.client_auth), refused again without a secret compared.
CLIENT_AUTH_REFUSALS: web.AppKey[RecentRefusals] = web.AppKey("client_auth_refusals")
