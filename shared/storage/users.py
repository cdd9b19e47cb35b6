"""Resource owners: a username, a stable subject id, and an argon2id password hash."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from shared.domain import records
from shared.domain.domain_errors import Conflict, Invalid
from shared.domain.password_hashing import RFC_9106_LOW_MEMORY, PasswordHashing
from shared.security import crypto
from shared.storage import keys

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient


@dataclass(slots=True)
class User:
    username: str
    sub: str
    password_hash: str
    created_at: int
    # OpenID Connect Core §5.1 standard claims (name, email, ...), as
    # ``shared.domain.user_claims`` checks them; updated_at is kept beside them.
    claims: dict[str, Any] = field(default_factory=dict)
    updated_at: int = 0


async def add(
    redis: RedisClient,
    username: str,
    password: str,
    hashing: PasswordHashing = RFC_9106_LOW_MEMORY,
) -> User:
    if not username or any(ch.isspace() or not ch.isprintable() for ch in username):
        raise Invalid("username must be non-empty, without spaces or control characters")
    if len(password) < 8:
        raise Invalid("password must be at least 8 characters")
    user = User(
        username=username,
        sub=crypto.random_token(16),
        # argon2id holds a core and 64 MiB for about a tenth of a second: off the loop.
        password_hash=await asyncio.to_thread(crypto.hash_password, password, hashing),
        created_at=int(time.time()),
    )
    if not await redis.set(keys.user(username), orjson.dumps(user), nx=True):
        raise Conflict(f"user {username!r} already exists")
    await redis.sadd(keys.USER_INDEX, username)
    return user


async def get(redis: RedisClient, username: str) -> User | None:
    raw = await redis.get(keys.user(username))
    return records.from_json(User, raw) if raw else None
