"""Password checks counted per username in Redis, so that guessing a password is slow.

Every check first takes an attempt from the username's allowance, atomically; past
``login_max_failures`` attempts within ``login_failure_window`` seconds the username is
refused without checking the password (and without spending argon2 on it) until the
window ends, and a success gives the allowance back. Taking the attempt before the check,
not counting failures after it, is what stops many guesses sent at once from all being
checked. The same rule holds for usernames that do not exist, so the refusal tells
nothing about which accounts exist. Keyed by a digest: a password typed into the username
field never lands in Redis in clear.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from shared import crypto, keys, users
from shared.settings import Settings
from shared.users import User

if TYPE_CHECKING:
    from shared.redis_store import RedisClient


class Refused(Enum):
    LOCKED = "too many failures for this username"
    WRONG = "wrong username or password"


def _key(username: str) -> str:
    return keys.login_failures(crypto.digest(username.casefold()))


async def _take_attempt(redis: RedisClient, settings: Settings, username: str) -> int:
    """Count one more attempt; how many there have been in the window, this one included."""
    key = _key(username)
    async with redis.pipeline(transaction=True) as pipe:
        # The window starts at the first attempt; INCR keeps the TTL.
        pipe.set(key, 0, ex=settings.login_failure_window, nx=True)
        pipe.incr(key)
        _, attempts = await pipe.execute()
    return int(attempts)


async def sign_in(
    redis: RedisClient, settings: Settings, username: str, password: str
) -> User | Refused:
    """Check a person's password within the allowance; one path for the login page and
    the password grant (RFC 6749 §10.7 asks both to resist brute force)."""
    if await _take_attempt(redis, settings, username) > settings.login_max_failures:
        return Refused.LOCKED
    user = await users.authenticate(redis, username, password)
    if user is None:
        return Refused.WRONG
    await redis.delete(_key(username))
    return user
