"""Token, scope and client management: webMethods Integration Server's Tokens page and
admin services.

One implementation behind both the ``tessera`` CLI and the admin API
(``services.admin``). Tokens are found through the per-client and per-user family
indexes that issuing keeps (``shared.storage.families``); listings never show a token's
value, which Tessera does not store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.domain.domain_errors import Conflict, NotFound
from shared.domain.token_records import NEVER_EXPIRES
from shared.storage import clients, consents, families, scopes, tokens, users

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


async def list_tokens(
    redis: RedisClient, *, client_id: str | None = None, username: str | None = None
) -> list[TokenInfo]:
    """Live access and refresh tokens, of one client and/or one user or all, oldest first."""
    family_ids = await families.find(redis, client_id=client_id, username=username)
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
        for kind, record in await tokens.live_tokens(redis, family_ids)
    ]
    return sorted(found, key=lambda t: (t.issued_at, t.family, t.kind))


async def revoke_token(redis: RedisClient, token: str) -> bool:
    """Revoke the grant family of an access or refresh token; False when none is live."""
    record = await tokens.find_unverified(redis, token)
    if record is None:
        return False
    await families.revoke_grant(redis, record.grant)
    return True


async def revoke_client_tokens(redis: RedisClient, client_id: str) -> int:
    """Revoke every grant family of a client; the number revoked."""
    return await families.revoke_listed(redis, client_id=client_id)


async def revoke_user_tokens(redis: RedisClient, username: str) -> int:
    """Revoke every grant family issued for a person; the number revoked."""
    return await families.revoke_listed(redis, username=username)


async def revoke_user_client(redis: RedisClient, username: str, client_id: str) -> int:
    """A person revokes an application (the connected-applications page): forget their
    approval of it, so the next request asks again, and revoke every grant family issued
    to that client for that person (access and refresh tokens alike); the number revoked.
    Other people's grants of the client, and the person's grants of other clients, stay.

    The approval goes first: from then on no request is answered from it, so no new grant
    starts that the revocation below would miss.
    """
    await consents.forget(redis, username, client_id)
    return await families.revoke_listed(redis, client_id=client_id, username=username)


async def delete_client(redis: RedisClient, client_id: str) -> int:
    """Delete a client, its tokens and everyone's approval of it; the number of grant
    families revoked.

    The record goes first: from then on its tokens introspect as inactive and it cannot
    authenticate to be issued more, so none escapes the revocation that follows.
    """
    await clients.delete(redis, client_id)
    await consents.forget_client(redis, client_id)
    return await revoke_client_tokens(redis, client_id)


async def set_user_enabled(
    redis: RedisClient, username: str, enabled: bool
) -> tuple[users.User, users.User]:
    """Let a person sign in or not; (before, after). Disabling also revokes every grant
    issued for them: the record changes first, so no sign-in starts a grant that the
    revocation would miss."""
    before, after = await users.set_enabled(redis, username, enabled)
    if not enabled:
        await revoke_user_tokens(redis, username)
    return before, after


async def delete_user(redis: RedisClient, username: str) -> tuple[users.User, int]:
    """Delete a person, their approvals and their tokens; (the record deleted, the number
    of grant families revoked). The record goes first, as ``delete_client``'s."""
    user = await users.delete(redis, username)
    await consents.forget_user(redis, username)
    return user, await revoke_user_tokens(redis, username)


@dataclass(slots=True, frozen=True)
class Approval:
    """A person's remembered approval of a client (the connected-applications page)."""

    username: str
    consent: consents.Consent


async def list_approvals(
    redis: RedisClient, *, username: str | None = None, client_id: str | None = None
) -> list[Approval]:
    """The approvals of a person, of a client, or a person's of one client."""
    if username is not None:
        found = [Approval(username, c) for c in await consents.list_for(redis, username)]
        return [a for a in found if client_id is None or a.consent.client_id == client_id]
    if client_id is None:
        raise TypeError("list_approvals needs a person, a client or both")
    return [Approval(name, c) for name, c in await consents.of_client(redis, client_id)]


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
