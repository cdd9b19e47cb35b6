"""A service's log fingerprints take the key every process shares
(``shared.storage.log_fingerprint_key``) at start-up, or in the background once Redis
answers; until then they are the process's own (``fp-local:``, see
``shared.security.fingerprint``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web
from redis.exceptions import RedisError

from shared.security import fingerprint
from shared.storage.log_fingerprint_key import shared_key
from shared.web.app_keys import REDIS

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient

log = logging.getLogger("tessera.fingerprint")

# Start-up waits this long for the shared key at most; then retries run in the background.
LOAD_SECONDS = 2.0
RETRY_SECONDS = 5.0


async def _load(redis: RedisClient) -> None:
    fingerprint.use_shared_key(await shared_key(redis))


async def _retry(redis: RedisClient) -> None:
    while True:
        await asyncio.sleep(RETRY_SECONDS)
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await _load(redis)
            log.info("log fingerprints use the shared key from now on")
            return


async def fingerprint_key_context(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context, after the Redis one: the shared key read before the service
    serves, or read in the background once Redis answers."""
    redis = app[REDIS]
    retrying: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(LOAD_SECONDS):
            await _load(redis)
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning(
            "log fingerprints are this process's own (%s) until Redis answers: %s",
            fingerprint.LOCAL_PREFIX,
            type(exc).__name__,
        )
        retrying = asyncio.create_task(_retry(redis))
    yield
    if retrying is not None:
        retrying.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await retrying
