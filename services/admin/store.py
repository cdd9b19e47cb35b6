"""The admin API's Redis client: redis-py's (``shared.storage.redis_store.connect``), as
administration uses (DESIGN: the request-path client is for the hot paths; the audit
stream needs commands it does not have), opened and closed with the application. With
the settings and the JWT keys it is also the app's ``Tessera``, which checks access
tokens presented as credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from shared.security.signing_keys import load_key_set
from shared.storage.redis_store import AdminClient, connect
from shared.storage.tessera import Tessera
from shared.web.app_keys import REDIS, SETTINGS, TESSERA

ADMIN_REDIS: web.AppKey[AdminClient] = web.AppKey("admin_redis")


async def admin_redis(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    key_set = (
        load_key_set(settings.signing_keys, settings.signing_key) if settings.signing_keys else None
    )
    redis = connect(settings.redis_url)
    app[ADMIN_REDIS] = redis
    app[REDIS] = redis
    app[TESSERA] = Tessera(settings, redis, key_set)
    yield
    await redis.aclose()
