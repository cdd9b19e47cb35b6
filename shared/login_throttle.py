"""Failed sign-ins counted per username in Redis, so that guessing a password is slow.

Past ``login_max_failures`` failures within ``login_failure_window`` seconds a username is
refused without checking the password (and without spending argon2 on it) until the
window ends. The same rule holds for usernames that do not exist, so the refusal tells
nothing about which accounts exist. Keyed by a digest: a password typed into the username
field never lands in Redis in clear.
"""

from __future__ import annotations

from enum import Enum

from redis.asyncio import Redis

from shared import crypto, keys, users
from shared.settings import Settings
from shared.users import User


def _key(username: str) -> str:
    return keys.login_failures(crypto.digest(username.casefold()))


async def is_locked(redis: Redis, settings: Settings, username: str) -> bool:
    failures = await redis.get(_key(username))
    return int(failures or 0) >= settings.login_max_failures


async def record_failure(redis: Redis, settings: Settings, username: str) -> None:
    key = _key(username)
    async with redis.pipeline(transaction=True) as pipe:
        # The window starts at the first failure; INCR keeps the TTL.
        pipe.set(key, 0, ex=settings.login_failure_window, nx=True)
        pipe.incr(key)
        await pipe.execute()


async def clear(redis: Redis, username: str) -> None:
    await redis.delete(_key(username))


class Refused(Enum):
    LOCKED = "too many failures for this username"
    WRONG = "wrong username or password"


async def sign_in(redis: Redis, settings: Settings, username: str, password: str) -> User | Refused:
    """Check a person's password, counting failures; one path for the login page and the
    password grant (RFC 6749 §10.7 asks both to resist brute force)."""
    if await is_locked(redis, settings, username):
        return Refused.LOCKED
    user = await users.authenticate(redis, username, password)
    if user is None:
        await record_failure(redis, settings, username)
        return Refused.WRONG
    await clear(redis, username)
    return user
