"""The relying parties of a browser session: the clients issued a code of an OpenID
Connect request while a person was signed in, so that signing out tells each of them
(Back-Channel Logout 1.0 §2.7). Per session, under its public id (``sid``, §2.1), a set
of client ids: as many as the applications the person used in that session, and gone
with the session (its TTL is the session lifetime, renewed by every code).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.storage import keys

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient


async def add(redis: RedisClient, sid: str, client_id: str, lifetime: int) -> None:
    """Remember that ``client_id`` was issued an ID token's code in session ``sid``."""
    key = keys.session_clients(sid)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.sadd(key, client_id)
        pipe.expire(key, lifetime)
        await pipe.execute()


async def take(redis: RedisClient, sid: str) -> list[str]:
    """The session's clients, forgotten in the same step (one MULTI on one key): two
    sign-outs of one session at once tell each client once."""
    key = keys.session_clients(sid)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.smembers(key)
        pipe.delete(key)
        members, _ = await pipe.execute()
    return sorted(members)


async def discard(redis: RedisClient, sid: str, client_id: str) -> bool:
    """Forget one client of the session (its access was removed; it is told then);
    whether it was there."""
    return bool(await redis.srem(keys.session_clients(sid), client_id))
