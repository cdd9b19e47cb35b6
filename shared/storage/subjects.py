"""The ``sub`` a client sees for a person (OpenID Connect Core §8), and the ``sid`` it
sees for a session.

Public: the person's own ``sub``, a random id made when the user was added (never the
username, never given to anyone else). Pairwise (§8.1): a value of its own per sector
identifier, so that clients of different sectors cannot tell that they serve one person:
HMAC-SHA256, keyed by a random salt kept in Redis, of the sector and the person's ``sub``.
The salt is made once by whichever process asks first, and cached per Redis client.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import weakref
from typing import TYPE_CHECKING

from jwt.utils import base64url_encode
from redis.exceptions import RedisError

from shared.storage import keys

if TYPE_CHECKING:
    from shared.storage.clients import Client
    from shared.storage.redis_store import RedisClient

_SALT_BYTES = 32
_salts: weakref.WeakKeyDictionary[RedisClient, bytes] = weakref.WeakKeyDictionary()


async def _pairwise_salt(redis: RedisClient) -> bytes:
    salt = _salts.get(redis)
    if salt is None:
        await redis.set(keys.PAIRWISE_SALT, secrets.token_urlsafe(_SALT_BYTES), nx=True)
        stored = await redis.get(keys.PAIRWISE_SALT)
        if not stored:  # removed between the two commands: the request fails, the next retries
            raise RedisError("the pairwise salt vanished")
        salt = _salts[redis] = str(stored).encode()
    return salt


def pairwise(salt: bytes, sector: str, sub: str) -> str:
    mac = hmac.new(salt, f"{sector}\0{sub}".encode(), hashlib.sha256).digest()
    return base64url_encode(mac).decode("ascii")


async def subject_for(redis: RedisClient, client: Client, sub: str) -> str:
    """The ``sub`` that ``client`` sees for the person whose own ``sub`` is ``sub``."""
    if client.subject_type != "pairwise":
        return sub
    return pairwise(await _pairwise_salt(redis), client.sector_identifier, sub)


async def session_for(redis: RedisClient, client: Client, sid: str) -> str:
    """The ``sid`` that ``client`` sees for the browser session ``sid``: for a pairwise
    client, one of its sector's own, since two sectors that shared a session id could
    join their pairwise subs on it (Core §8.1's purpose)."""
    if client.subject_type != "pairwise":
        return sid
    return pairwise(await _pairwise_salt(redis), client.sector_identifier, f"sid:{sid}")
