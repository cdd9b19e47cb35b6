"""Access and refresh tokens: opaque values, stored under their digest with a TTL.

Each token lives at a key in its grant family's slot and is listed in the family, so a
code replay (RFC 6749 §4.1.2) or later a refresh reuse (RFC 9700 §4.14.2) revokes all of
them at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

from shared import crypto, families, keys
from shared.settings import Settings

TOKEN_BYTES = 32  # 256 bits of entropy in every access and refresh token


@dataclass(slots=True)
class TokenRecord:
    family: str
    client_id: str
    scope: list[str]
    username: str | None
    sub: str
    iat: int
    exp: int


@dataclass(slots=True, frozen=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    scope: list[str]
    refresh_token: str | None


async def issue(
    redis: Redis,
    settings: Settings,
    *,
    family: str,
    client_id: str,
    scope: list[str],
    username: str | None,
    sub: str,
    with_refresh_token: bool,
) -> IssuedTokens | None:
    """Store a new access token (and refresh token) in the family.

    None when the family was revoked meanwhile, for instance by a replayed code.
    """
    now = int(time.time())
    lifetime = settings.access_token_lifetime
    access_token = families.new_value(family, TOKEN_BYTES)
    record = TokenRecord(family, client_id, scope, username, sub, now, now + lifetime)
    token_keys = [keys.access_token(family, crypto.digest(access_token))]
    args: list[bytes | int] = [orjson.dumps(record), lifetime]
    refresh_token = None
    if with_refresh_token:
        refresh_token = families.new_value(family, TOKEN_BYTES)
        refresh_lifetime = settings.refresh_token_lifetime
        refresh_record = TokenRecord(
            family, client_id, scope, username, sub, now, now + refresh_lifetime
        )
        token_keys.append(keys.refresh_token(family, crypto.digest(refresh_token)))
        args += [orjson.dumps(refresh_record), refresh_lifetime]
    stored = await redis.eval(
        keys.ISSUE_TOKENS,
        2 + len(token_keys),
        keys.family_members(family),
        keys.family_revoked(family),
        *token_keys,
        *args,
    )
    if not stored:
        return None
    return IssuedTokens(access_token, lifetime, scope, refresh_token)


async def find_access_token(redis: Redis, token: str) -> TokenRecord | None:
    """The record of a live access token, or None (unknown, expired or revoked)."""
    family = families.family_of(token)
    if family is None:
        return None
    raw = await redis.get(keys.access_token(family, crypto.digest(token)))
    if raw is None:
        return None
    record = TokenRecord(**orjson.loads(raw))
    # Redis expires the key; the check covers clock skew between Redis and us.
    return record if record.exp > time.time() else None
