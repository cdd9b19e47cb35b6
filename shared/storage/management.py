"""Token, scope and client management: webMethods Integration Server's Tokens page and
admin services.

One implementation behind both the ``tessera`` CLI and the token service's ``/admin/``
API. Tokens are found through the per-client and per-user family indexes that issuing
keeps (see ``tokens``); listings never show a token's value, which Tessera does not
store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.domain.domain_errors import Conflict, NotFound
from shared.storage import clients, consents, keys, scopes, tokens
from shared.storage.clients import NEVER_EXPIRES

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient


@dataclass(slots=True, frozen=True)
class TokenInfo:
    kind: str  # "access_token" or "refresh_token"
    family: str
    client_id: str
    username: str | None
    scope: list[str]
    issued_at: int
    expires_at: int | None  # None: never expires


async def _live_families(redis: RedisClient, index_key: str) -> list[str]:
    """The families in an index whose tokens may still live; expired entries are pruned."""
    now = int(time.time())
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zremrangebyscore(index_key, "-inf", f"({now}")
        pipe.zrange(index_key, 0, -1)
        _, found = await pipe.execute()
    return list(found)


async def _families(redis: RedisClient, client_id: str | None, username: str | None) -> list[str]:
    if username is not None:
        found = await _live_families(redis, keys.user_families(username))
        if client_id is None:
            return found
        wanted = set(await _live_families(redis, keys.client_families(client_id)))
        return [family for family in found if family in wanted]
    client_ids = [client_id] if client_id is not None else await redis.smembers(keys.CLIENT_INDEX)
    found = []
    for each in sorted(client_ids):
        found += await _live_families(redis, keys.client_families(each))
    return found


async def list_tokens(
    redis: RedisClient, *, client_id: str | None = None, username: str | None = None
) -> list[TokenInfo]:
    """Live access and refresh tokens, of one client and/or one user or all, oldest first."""
    families = await _families(redis, client_id, username)
    found = [
        TokenInfo(
            kind=kind,
            family=record.family,
            client_id=record.client_id,
            username=record.username,
            scope=record.scope,
            issued_at=record.iat,
            expires_at=None if record.exp == NEVER_EXPIRES else record.exp,
        )
        for kind, record in await tokens.live_tokens(redis, families)
    ]
    return sorted(found, key=lambda t: (t.issued_at, t.family, t.kind))


async def _revoke_indexed(redis: RedisClient, index_key: str) -> int:
    """Revoke every family in an index and take them out of it; the number that still had
    live tokens. Only those listed are removed, so a family issued meanwhile stays."""
    families = await _live_families(redis, index_key)
    revoked = [family for family in families if await tokens.revoke_family(redis, family)]
    if families:
        await redis.zrem(index_key, *families)
    return len(revoked)


async def revoke_token(redis: RedisClient, token: str) -> bool:
    """Revoke the grant family of an access or refresh token; False when none is live."""
    record = await tokens.find_unverified(redis, token)
    if record is None:
        return False
    await tokens.revoke(redis, record)
    return True


async def revoke_client_tokens(redis: RedisClient, client_id: str) -> int:
    """Revoke every grant family of a client; the number revoked."""
    return await _revoke_indexed(redis, keys.client_families(client_id))


async def revoke_user_tokens(redis: RedisClient, username: str) -> int:
    """Revoke every grant family issued for a person; the number revoked."""
    return await _revoke_indexed(redis, keys.user_families(username))


async def revoke_user_client(redis: RedisClient, username: str, client_id: str) -> int:
    """A person revokes an application (the connected-applications page): forget their
    approval of it, so the next request asks again, and revoke every grant family issued
    to that client for that person (access and refresh tokens alike); the number revoked.
    Other people's grants of the client, and the person's grants of other clients, stay.

    The approval goes first: from then on no request is answered from it, so no new grant
    starts that the revocation below would miss.
    """
    await consents.forget(redis, username, client_id)
    families = await _families(redis, client_id, username)
    revoked = [family for family in families if await tokens.revoke_family(redis, family)]
    if families:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zrem(keys.user_families(username), *families)
            pipe.zrem(keys.client_families(client_id), *families)
            await pipe.execute()
    return len(revoked)


async def delete_client(redis: RedisClient, client_id: str) -> int:
    """Delete a client, its tokens and everyone's approval of it; the number of grant
    families revoked.

    The record goes first: from then on its tokens introspect as inactive and it cannot
    authenticate to be issued more, so none escapes the revocation that follows.
    """
    await clients.delete(redis, client_id)
    await consents.forget_client(redis, client_id)
    return await revoke_client_tokens(redis, client_id)


@dataclass(slots=True, frozen=True)
class ScopeUsage:
    """A scope definition and the clients registered for it, by id."""

    scope: scopes.Scope
    client_ids: list[str]

    def view(self) -> dict[str, object]:
        return {**self.scope.view(), "clients": self.client_ids}


async def _clients_of(redis: RedisClient, name: str) -> list[str]:
    """The ids of the clients registered for the scope ``name``."""
    return [c.client_id for c in await clients.list_all(redis) if name in c.scopes]


async def show_scope(redis: RedisClient, name: str) -> ScopeUsage:
    """A scope definition with the clients registered for it; NotFound when undefined."""
    scope = await scopes.get(redis, name)
    if scope is None:
        raise NotFound("scope", name)
    return ScopeUsage(scope, await _clients_of(redis, name))


async def delete_scope(redis: RedisClient, name: str) -> None:
    """Delete a scope definition: NotFound when undefined, Conflict while a client is
    registered for it (as in webMethods Integration Server)."""
    in_use = await show_scope(redis, name)
    if in_use.client_ids:
        raise Conflict(
            f"scope {name!r} is still associated with client(s) {', '.join(in_use.client_ids)}"
        )
    await scopes.delete(redis, name)
    await consents.forget_scope(redis, name)
