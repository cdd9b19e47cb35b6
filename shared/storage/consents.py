"""Remembered consent: which scopes a person has approved for a client, and when.

Every approval on the approval page is recorded, whether or not the client remembers
consent: the record is what the person's connected-applications page lists and revokes.
A client registered with ``remember_consent`` then skips the approval page when the
record already covers every requested scope (RFC 6749 §10.2 allows answering a repeated
request without the person only when the client's identity is assured; see
``clients._check_remember_consent`` and README).

Approving again: the scopes the page showed are decided anew (ticked ones remembered,
unticked ones forgotten); scopes approved before and not shown this time stay. A person
who unticks a scope is never asked about it again silently, and one who approved a
client for ``read`` and later for ``write`` alone is not asked again for ``read``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from shared.domain import records
from shared.storage import keys, scripts

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient


@dataclass(slots=True, frozen=True)
class Consent:
    client_id: str
    scope: list[str]
    first_approved: int
    last_used: int

    def covers(self, requested: list[str]) -> bool:
        """Every requested scope was approved: then, and only then, the page may be
        skipped, and what is issued is the request's scopes, never the record's."""
        return bool(requested) and set(requested) <= set(self.scope)


def _parse(client_id: str, raw: str | bytes) -> Consent:
    # The client id is the hash field's name, not part of the record.
    return records.from_json(Consent, raw, client_id=client_id)


async def get(redis: RedisClient, username: str, client_id: str) -> Consent | None:
    raw = await redis.hget(keys.consents(username), client_id)
    return _parse(client_id, raw) if raw else None


async def list_for(redis: RedisClient, username: str) -> list[Consent]:
    """The person's remembered approvals, most recently used first."""
    found = await redis.hgetall(keys.consents(username))
    listed = [_parse(str(client_id), raw) for client_id, raw in found.items()]
    return sorted(listed, key=lambda c: (-c.last_used, c.client_id))


async def of_client(redis: RedisClient, client_id: str) -> list[tuple[str, Consent]]:
    """Everyone's remembered approval of a client, as (username, approval)."""
    usernames = sorted(str(name) for name in await redis.smembers(keys.client_consents(client_id)))
    if not usernames:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for username in usernames:
            pipe.hget(keys.consents(username), client_id)
        raws = await pipe.execute()
    # A person may be listed with nothing remembered (``record``), never the reverse.
    return [
        (username, _parse(client_id, raw))
        for username, raw in zip(usernames, raws, strict=True)
        if raw
    ]


async def record(
    redis: RedisClient, username: str, client_id: str, shown: list[str], approved: list[str]
) -> None:
    """Remember a decision on the approval page (see the module docstring)."""
    # Indexed first: a person may be listed under a client with nothing remembered, never
    # the reverse, so deleting the client always finds every approval of it.
    await scripts.record_consent(
        redis,
        lambda pipe: pipe.sadd(keys.client_consents(client_id), username),
        consents=keys.consents(username),
        client_id=client_id,
        shown=orjson.dumps(shown),
        approved=orjson.dumps(approved),
        now=int(time.time()),
    )


async def touch(redis: RedisClient, username: str, client_id: str) -> None:
    """A remembered approval answered a request: its last-used time moves on."""
    await scripts.touch_consent(
        redis, consents=keys.consents(username), client_id=client_id, now=int(time.time())
    )


async def forget(redis: RedisClient, username: str, client_id: str) -> bool:
    """Forget the person's approval of a client; False when there was none."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hdel(keys.consents(username), client_id)
        pipe.srem(keys.client_consents(client_id), username)
        deleted, _ = await pipe.execute()
    return bool(deleted)


async def forget_client(redis: RedisClient, client_id: str) -> int:
    """Forget every approval of a client (it is being deleted); how many there were."""
    index = keys.client_consents(client_id)
    usernames = sorted(await redis.smembers(index))
    if not usernames:
        return 0
    # Only those listed leave the index, as in families.revoke_listed.
    async with redis.pipeline(transaction=False) as pipe:
        for username in usernames:
            pipe.hdel(keys.consents(username), client_id)
        pipe.srem(index, *usernames)
        results = await pipe.execute()
    return sum(results[:-1])


async def forget_user(redis: RedisClient, username: str) -> int:
    """Forget every approval of a person (they are being deleted); how many there were."""
    client_ids = sorted(await redis.hgetall(keys.consents(username)))
    # The person leaves each client's index first: listed with nothing remembered is
    # allowed (``record``), the reverse is not.
    async with redis.pipeline(transaction=False) as pipe:
        for client_id in client_ids:
            pipe.srem(keys.client_consents(client_id), username)
        await pipe.execute()
    await redis.delete(keys.consents(username))
    return len(client_ids)


async def forget_scope(redis: RedisClient, name: str) -> int:
    """Take a deleted scope out of every remembered approval; how many changed. A scope
    re-created later under the same name may mean something else, so nobody's earlier
    approval of the old one may stand for it."""
    changed = 0
    for username in await redis.smembers(keys.USER_INDEX):
        changed += await scripts.forget_consented_scope(
            redis, consents=keys.consents(str(username)), scope=name
        )
    return changed
