"""Pending authorization requests between ``/authorize`` and the person's decision.

This is the seed system's "PKCE cache": the validated request, PKCE challenge included,
stored under a random interaction id with a short TTL. It is bound to the browser session
that started it, so an interaction id learned by someone else is worth nothing in their
browser. The decision consumes it with GETDEL, so one approval yields at most one code.
"""

from __future__ import annotations

import orjson
from redis.asyncio import Redis

from services.authorize.authorization_request import AuthorizationRequest
from services.authorize.sessions import Session
from shared import crypto, keys
from shared.settings import Settings


def _record(request: AuthorizationRequest, session: Session) -> bytes:
    return orjson.dumps({"request": request, "session": crypto.digest(session.session_id)})


def _parse(raw: str | None, session: Session) -> AuthorizationRequest | None:
    if raw is None:
        return None
    record = orjson.loads(raw)
    if not crypto.same(record["session"], crypto.digest(session.session_id)):
        return None
    return AuthorizationRequest(**record["request"])


async def create(
    redis: Redis, settings: Settings, request: AuthorizationRequest, session: Session
) -> str:
    interaction_id = crypto.random_token(16)
    await redis.set(
        keys.interaction(interaction_id),
        _record(request, session),
        ex=settings.interaction_lifetime,
    )
    return interaction_id


async def get(redis: Redis, interaction_id: str, session: Session) -> AuthorizationRequest | None:
    """The pending request, when it exists and belongs to this browser session."""
    return _parse(await redis.get(keys.interaction(interaction_id)), session)


async def rebind(
    redis: Redis, interaction_id: str, request: AuthorizationRequest, session: Session
) -> None:
    """Follow the browser to its new session id after sign-in; the TTL runs on."""
    await redis.set(keys.interaction(interaction_id), _record(request, session), keepttl=True)


async def consume(
    redis: Redis, interaction_id: str, session: Session
) -> AuthorizationRequest | None:
    # Checked before it is consumed, so a foreign session cannot destroy it either.
    if await get(redis, interaction_id, session) is None:
        return None
    return _parse(await redis.getdel(keys.interaction(interaction_id)), session)
