"""Resource owners: a username, a stable subject id, an argon2id password hash, the
profile claims of OpenID Connect Core §5.1 with the time they last changed, and whether
they may sign in."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import orjson

from shared.domain import records, user_claims
from shared.domain.domain_errors import Conflict, Invalid, NotFound
from shared.domain.password_hashing import RFC_9106_LOW_MEMORY, PasswordHashing
from shared.security import crypto
from shared.storage import keys, listing, record_changes, scripts

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
    # A disabled person cannot sign in (``shared.web.login_throttle``); their tokens were
    # revoked when they were disabled (``shared.storage.management.set_user_enabled``).
    enabled: bool = True

    def public_view(self) -> dict[str, Any]:
        """What an administrator is shown: everything but the password hash."""
        return {
            "username": self.username,
            "sub": self.sub,
            "enabled": self.enabled,
            "created_at": self.created_at,
            "claims": self.claims,
            "updated_at": self.updated_at,
        }


def _check_password(password: str) -> None:
    if len(password) < 8:
        raise Invalid("password must be at least 8 characters", field="password")


async def add(
    redis: RedisClient,
    username: str,
    password: str,
    hashing: PasswordHashing = RFC_9106_LOW_MEMORY,
    *,
    claims: Mapping[str, Any] | None = None,
    enabled: bool = True,
) -> User:
    if not username or any(ch.isspace() or not ch.isprintable() for ch in username):
        raise Invalid(
            "username must be non-empty, without spaces or control characters", field="username"
        )
    _check_password(password)
    checked = user_claims.checked_claims(claims or {})
    now = int(time.time())
    user = User(
        username=username,
        sub=crypto.random_token(16),
        # argon2id holds a core and 64 MiB for about a tenth of a second: off the loop.
        password_hash=await asyncio.to_thread(crypto.hash_password, password, hashing),
        created_at=now,
        claims=checked,
        # Core §5.1: the time the information was last updated; none without any.
        updated_at=now if checked else 0,
        enabled=enabled,
    )
    if not await redis.set(keys.user(username), orjson.dumps(user), nx=True):
        raise Conflict(f"user {username!r} already exists")
    await redis.sadd(keys.USER_INDEX, username)
    return user


async def get(redis: RedisClient, username: str) -> User | None:
    raw = await redis.get(keys.user(username))
    return records.from_json(User, raw) if raw else None


async def existing(redis: RedisClient, username: str) -> User:
    """The user named ``username``; NotFound when there is none."""
    user = await get(redis, username)
    if user is None:
        raise NotFound("user", username)
    return user


async def update_claims(redis: RedisClient, username: str, changes: Mapping[str, Any]) -> User:
    """Set and clear profile claims (a JSON merge patch of them, RFC 7396: ``None``
    clears; ``address`` changes member by member) and set ``updated_at``. Applied by one
    script to the record as stored, so a concurrent change of the claims or the password
    is never lost. Invalid for a bad value (nothing changed), NotFound for no such user."""
    checked = user_claims.checked_changes(changes)
    stored = await scripts.update_user_claims(
        redis, user=keys.user(username), changes=orjson.dumps(checked), updated_at=int(time.time())
    )
    if stored is None:
        raise NotFound("user", username)
    return records.from_json(User, stored)


async def _change(
    redis: RedisClient, username: str, change: Callable[[User], Awaitable[User]]
) -> tuple[User, User]:
    """Apply ``change`` to the person's record as stored (``record_changes``)."""
    return await record_changes.change(
        redis, keys.user(username), User, change, kind="user", name=username
    )


async def set_enabled(redis: RedisClient, username: str, enabled: bool) -> tuple[User, User]:
    """Let a person sign in or not; (before, after). Revoking a disabled person's tokens
    is ``management.set_user_enabled``'s."""

    async def change(user: User) -> User:
        user.enabled = enabled
        return user

    return await _change(redis, username, change)


async def set_password(
    redis: RedisClient,
    username: str,
    password: str,
    hashing: PasswordHashing = RFC_9106_LOW_MEMORY,
) -> None:
    _check_password(password)
    password_hash = await asyncio.to_thread(crypto.hash_password, password, hashing)

    async def change(user: User) -> User:
        user.password_hash = password_hash
        return user

    await _change(redis, username, change)


async def delete(redis: RedisClient, username: str) -> User:
    """Remove the person's record; the record removed. Their approvals and tokens are
    ``management.delete_user``'s."""
    user = await existing(redis, username)
    if not await redis.delete(keys.user(username)):
        raise NotFound("user", username)
    await redis.srem(keys.USER_INDEX, username)
    return user


async def page(
    redis: RedisClient, *, after: str | None, limit: int, enabled: bool | None = None
) -> listing.Page[User]:
    """A page of the people, by username; only those enabled (or not) when ``enabled``."""
    # Replies are text: every Tessera Redis client decodes them (decode_responses).
    return await listing.page(
        cast("set[str]", await redis.smembers(keys.USER_INDEX)),
        after=after,
        limit=limit,
        fetch=listing.json_records(redis, User, keys.user),
        keep=lambda user: enabled is None or user.enabled == enabled,
    )
