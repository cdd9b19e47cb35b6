"""Grant families: everything issued from one grant, revocable as one.

A family holds what one approval (or one client credentials or password request) issued:
its code, its access tokens, its refresh tokens. A code replay (RFC 6749 §4.1.2), a
refresh token reuse (RFC 9700 §4.14.2) or a revocation (RFC 7009 §2.1) revokes the whole
family at once. This module is the family's one home: its ids and the values that name
it, its tombstone, the indexes that list it under its client and its person, and its
revocation. Its key names are ``shared.storage.keys``'s, as every key name is.

A code or token value is ``<family>.<secret>``. The family id is public and random; the
secret carries the entropy. Knowing the family from the value lets Tessera find the
family's keys (one Redis Cluster slot) without any index lookup.

Token management finds families through the indexes: a sorted set per client and per
person, each family scored by when its last token expires. A family is listed before
anything of it is stored, so it may be listed with nothing left in it, never the reverse.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from shared.domain.token_records import Grant
from shared.security import crypto
from shared.storage import keys, scripts

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient

FAMILY_BYTES = 16  # 128-bit family ids

# How long a revoked family stays marked, so nothing more is issued into it: longer than
# a code can live (TESSERA_CODE_LIFETIME is at most an hour), since redeeming a code is
# the only way into a family whose tokens are gone.
TOMBSTONE_TTL = 24 * 3600


def new_family() -> str:
    return crypto.random_token(FAMILY_BYTES)


def new_value(family: str, nbytes: int) -> str:
    """A new code or token value of the family, with ``nbytes`` of entropy."""
    return f"{family}.{crypto.random_token(nbytes)}"


def family_of(value: str) -> str | None:
    """The family id a code or token value names, or None when it is not one of ours."""
    family, dot, secret = value.partition(".")
    if not dot or not family or not secret or len(value) > 256:
        return None
    if not all(ch.isalnum() or ch in "-_" for ch in family):
        return None
    return family


# --- the client and person indexes ---------------------------------------------------


def _indexes(client_id: str | None, username: str | None) -> list[str]:
    found = []
    if client_id is not None:
        found.append(keys.client_families(client_id))
    if username is not None:
        found.append(keys.user_families(username))
    return found


# When this process last dropped the expired families of an index. Dropping them at
# every issuance cost a command each time a busy client was issued a token; once a
# second keeps an index within a second's expiries of its live families.
PRUNE_SECONDS = 1.0
_pruned_at: dict[str, float] = {}
_PRUNED_AT_ENTRIES = 10_000


def queue_index(pipe: Any, grant: Grant, expires_at: float) -> None:
    """Queue on ``pipe`` (a pipeline of any Tessera Redis client) the commands that list
    the grant's family under its client and person, scored by when its last token
    expires (GT: a rotation only ever extends it), dropping the families whose time has
    passed so an index holds no more than the live ones. Safe to send twice."""
    now = time.time()
    for index in _indexes(grant.client_id, grant.username):
        if now - _pruned_at.get(index, 0.0) >= PRUNE_SECONDS:
            if len(_pruned_at) >= _PRUNED_AT_ENTRIES:
                _pruned_at.clear()
            _pruned_at[index] = now
            pipe.zremrangebyscore(index, "-inf", f"({int(now)}")
        pipe.zadd(index, {grant.family: expires_at}, gt=True)


async def index(redis: RedisClient, grant: Grant, expires_at: float) -> None:
    """List a family before anything of it is stored (an approval's code), so that
    revoking by person or client finds it, and its tombstone then keeps the code from
    ever being exchanged."""
    async with redis.pipeline(transaction=False) as pipe:
        queue_index(pipe, grant, expires_at)
        await pipe.execute()


async def _live(redis: RedisClient, index_key: str) -> list[str]:
    """The families in an index whose tokens may still live; expired entries are pruned."""
    now = int(time.time())
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zremrangebyscore(index_key, "-inf", f"({now}")
        pipe.zrange(index_key, 0, -1)
        _, found = await pipe.execute()
    return list(found)


async def find(
    redis: RedisClient, *, client_id: str | None = None, username: str | None = None
) -> list[str]:
    """The live families of a client, of a person, of both (a person's grants to one
    client), or of every client when neither is named."""
    if username is not None:
        found = await _live(redis, keys.user_families(username))
        if client_id is None:
            return found
        wanted = set(await _live(redis, keys.client_families(client_id)))
        return [family for family in found if family in wanted]
    client_ids = [client_id] if client_id is not None else await redis.smembers(keys.CLIENT_INDEX)
    found = []
    for each in sorted(client_ids):
        found += await _live(redis, keys.client_families(each))
    return found


# --- revocation ------------------------------------------------------------------------


async def revoke(redis: RedisClient, family: str) -> bool:
    """Delete every token of the family and keep anything more from being issued into it.
    False when nothing of it was left to delete."""
    deleted = await scripts.revoke_family(redis, family=family, tombstone_ttl=TOMBSTONE_TTL)
    return bool(deleted)


async def revoke_grant(redis: RedisClient, grant: Grant) -> None:
    """Revoke the grant's family, and take it out of its client's and person's index."""
    await revoke(redis, grant.family)
    async with redis.pipeline(transaction=False) as pipe:
        for index in _indexes(grant.client_id, grant.username):
            pipe.zrem(index, grant.family)
        await pipe.execute()


async def revoke_listed(
    redis: RedisClient, *, client_id: str | None = None, username: str | None = None
) -> int:
    """Revoke the live families of a client, of a person, or of both (``find``) and take
    them out of the indexes named; the number that still had live tokens. Only those
    listed are removed, so a family issued meanwhile stays."""
    if client_id is None and username is None:
        raise TypeError("revoke_listed needs a client, a person or both")
    found = await find(redis, client_id=client_id, username=username)
    revoked = [family for family in found if await revoke(redis, family)]
    if found:
        async with redis.pipeline(transaction=False) as pipe:
            for index in _indexes(client_id, username):
                pipe.zrem(index, *found)
            await pipe.execute()
    return len(revoked)
