"""The key of the log fingerprints (``shared.security.fingerprint``), kept in Redis so
that every process fingerprints alike: 32 random bytes under ``keys.LOG_FINGERPRINT_KEY``,
no TTL, made by whichever process asks first."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from shared.security.fingerprint import KEY_BYTES
from shared.storage import keys

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient


async def shared_key(redis: RedisClient) -> bytes:
    """The key every process uses, made by whichever asks first."""
    made = secrets.token_urlsafe(KEY_BYTES)
    await redis.set(keys.LOG_FINGERPRINT_KEY, made, nx=True)
    stored = await redis.get(keys.LOG_FINGERPRINT_KEY)
    if not stored:  # removed between the two commands: try again later
        raise RedisError("the log fingerprint key vanished")
    return str(stored).encode()
