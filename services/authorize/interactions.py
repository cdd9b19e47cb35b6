"""Pending authorization requests between ``/authorize`` and the person's decision.

This is the seed system's "PKCE cache": the validated request, PKCE challenge included,
stored under a random interaction id with a short TTL. It is bound to the browser that
started it (the session's server-side ``browser`` value), so an interaction id learned by
someone else is worth nothing in their browser. The decision takes it with a script that
checks the binding and deletes in one step, so one approval yields at most one code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from services.authorize.authorization_request import AuthorizationRequest
from services.authorize.sessions import Session
from shared import crypto, keys, records, scripts
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.redis_store import RedisClient

UNBOUND = ""


def _binding(session: Session) -> str:
    return crypto.digest(session.browser)


async def create(
    redis: RedisClient, settings: Settings, request: AuthorizationRequest, session: Session | None
) -> str:
    """Store the request, bound to ``session``'s browser, or unbound until ``claim``."""
    interaction_id = crypto.random_token(16)
    key = keys.interaction(interaction_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(
            key,
            mapping={
                "request": orjson.dumps(request),
                "browser": _binding(session) if session else UNBOUND,
            },
        )
        pipe.expire(key, settings.interaction_lifetime)
        await pipe.execute()
    return interaction_id


async def claim(redis: RedisClient, interaction_id: str, session: Session) -> bool:
    """Bind an unbound interaction to this browser; true when it is (now) this browser's."""
    return bool(
        await scripts.run(
            redis, keys.CLAIM_INTERACTION, [keys.interaction(interaction_id)], [_binding(session)]
        )
    )


async def get(
    redis: RedisClient, interaction_id: str, session: Session
) -> AuthorizationRequest | None:
    """The pending request, when it exists and belongs to this browser."""
    raw, browser = await redis.hmget(keys.interaction(interaction_id), ["request", "browser"])
    if raw is None or not crypto.same(browser or UNBOUND, _binding(session)):
        return None
    return records.from_json(AuthorizationRequest, raw)


async def update(
    redis: RedisClient, interaction_id: str, session: Session, request: AuthorizationRequest
) -> bool:
    """Replace the pending request, if it still exists and belongs to this browser."""
    return bool(
        await scripts.run(
            redis,
            keys.UPDATE_INTERACTION,
            [keys.interaction(interaction_id)],
            [_binding(session), orjson.dumps(request)],
        )
    )


async def take(
    redis: RedisClient, interaction_id: str, session: Session
) -> AuthorizationRequest | None:
    """Consume the pending request for the decision, if it belongs to this browser."""
    raw = await scripts.run(
        redis, keys.TAKE_INTERACTION, [keys.interaction(interaction_id)], [_binding(session)]
    )
    return records.from_json(AuthorizationRequest, raw) if raw else None
