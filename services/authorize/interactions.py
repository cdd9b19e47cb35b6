"""Pending authorization requests between ``/authorize`` and the person's decision.

This is the seed system's "PKCE cache": the validated request, PKCE challenge included,
stored under a random interaction id with a short TTL. The decision consumes it with
GETDEL, so one approval yields at most one code.
"""

from __future__ import annotations

import orjson
from redis.asyncio import Redis

from services.authorize.authorization_request import AuthorizationRequest
from shared import crypto, keys
from shared.settings import Settings


async def create(redis: Redis, settings: Settings, request: AuthorizationRequest) -> str:
    interaction_id = crypto.random_token(16)
    await redis.set(
        keys.interaction(interaction_id), orjson.dumps(request), ex=settings.interaction_lifetime
    )
    return interaction_id


def _parse(raw: str | None) -> AuthorizationRequest | None:
    return AuthorizationRequest(**orjson.loads(raw)) if raw else None


async def get(redis: Redis, interaction_id: str) -> AuthorizationRequest | None:
    return _parse(await redis.get(keys.interaction(interaction_id)))


async def consume(redis: Redis, interaction_id: str) -> AuthorizationRequest | None:
    return _parse(await redis.getdel(keys.interaction(interaction_id)))
