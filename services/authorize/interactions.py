"""Pending authorization requests between ``/authorize`` and the person's decision.

This is webMethods Integration Server's "PKCE cache": the validated request, PKCE
challenge included, stored under a random interaction id with a short TTL. It is bound to
the browser that started it (the session's server-side ``browser`` value), so an
interaction id learned by someone else is worth nothing in their browser. The decision
takes it with a script that checks the binding and deletes in one step, so one approval
yields at most one code.

Anyone can start one without signing in, so each is small and brief: one string, the
binding, the request as a JSON array, then the state as sent (it alone may be 1,024
characters), living ``anonymous_interaction_lifetime`` until the person signs in, then
``interaction_lifetime`` (README, "Rate limits and memory").
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

import orjson
from redis.exceptions import ResponseError

from services.authorize.authorization_request import AuthorizationRequest
from services.authorize.sessions import Session, SignedIn, who_is_signed_in
from shared.config.settings import Settings
from shared.domain.errors import OAuthError
from shared.security import crypto
from shared.storage import keys, scripts

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient


# The stored value begins with the binding: 128 bits of the browser value's digest,
# always this long. Not bound yet (a request that arrived by POST, until ``claim``):
# dots, which no digest contains.
_BINDING_LENGTH = 22
UNBOUND = "." * _BINDING_LENGTH
T = TypeVar("T")


def _binding(session: Session) -> str:
    return crypto.digest(session.browser)[:_BINDING_LENGTH]


def _encode(request: AuthorizationRequest) -> str:
    """The request by position, each value once (a field's name would cost more than most
    values), then the state as sent: in JSON a state of quotes would take twice its
    length. A newer release appends fields to the array; ``_decode`` ignores what it does
    not know, so replicas of this release and later ones share pending requests during a
    rolling update."""
    fields = [
        request.client_id,
        request.redirect_uri,
        request.redirect_uri_param is not None,
        request.scope,
        request.state is not None,
        request.code_challenge,
        request.code_challenge_method,
        request.response_type,
        request.prompt,
    ]
    # JSON from orjson holds no raw newline, and a state holds visible ASCII only.
    return f"{orjson.dumps(fields).decode()}\n{request.state or ''}"


def _decode(stored: str) -> AuthorizationRequest:
    array, _, state = stored.partition("\n")
    client_id, redirect_uri, given, scope, has_state, challenge, method, response_type, prompt = (
        orjson.loads(array)[:9]
    )
    return AuthorizationRequest(
        client_id=client_id,
        redirect_uri_param=redirect_uri if given else None,
        redirect_uri=redirect_uri,
        scope=scope,
        state=state if has_state else None,
        code_challenge=challenge,
        code_challenge_method=method,
        response_type=response_type,
        prompt=prompt,
    )


async def _unless_older(call: Awaitable[T], expired: T) -> T:
    """An interaction stored by a release before this one (a hash, not a string) reads
    as expired: it lives minutes, and the person starts again from the application."""
    try:
        return await call
    except ResponseError as exc:
        if "WRONGTYPE" not in str(exc):
            raise
        return expired


async def create(
    redis: RedisClient, settings: Settings, request: AuthorizationRequest, session: Session | None
) -> str:
    """Store the request, bound to ``session``'s browser, or unbound until ``claim``;
    brief until someone signed in has it (``keep``)."""
    interaction_id = crypto.random_token(16)
    signed_in = who_is_signed_in(session) is not None
    await redis.set(
        keys.interaction(interaction_id),
        (_binding(session) if session else UNBOUND) + _encode(request),
        ex=settings.interaction_lifetime if signed_in else settings.anonymous_interaction_lifetime,
    )
    return interaction_id


async def claim(redis: RedisClient, interaction_id: str, session: Session) -> bool:
    """Bind an unbound interaction to this browser; true when it is (now) this browser's."""
    claimed = scripts.claim_interaction(
        redis, interaction=keys.interaction(interaction_id), binding=_binding(session)
    )
    return bool(await _unless_older(claimed, 0))


async def get(
    redis: RedisClient, interaction_id: str, session: Session
) -> AuthorizationRequest | None:
    """The pending request, when it exists and belongs to this browser."""
    stored = await _unless_older(redis.get(keys.interaction(interaction_id)), None)
    binding = _binding(session)
    if stored is None or not crypto.same(stored[:_BINDING_LENGTH], binding):
        return None
    return _decode(stored[_BINDING_LENGTH:])


def expired() -> OAuthError:
    """The error page for an interaction that is not (or no longer) this browser's."""
    return OAuthError(
        "invalid_request",
        "This sign-in request has expired or is unknown. "
        "Go back to the application and start again.",
        cause="interaction unknown, expired, or started by another browser session",
    )


async def pending(
    redis: RedisClient, interaction_id: str | None, session: Session
) -> AuthorizationRequest:
    """The pending request, when it exists and belongs to this browser; else ``expired``."""
    request = await get(redis, interaction_id, session) if interaction_id else None
    if request is None:
        raise expired()
    return request


async def keep(
    redis: RedisClient,
    settings: Settings,
    interaction_id: str,
    session: SignedIn,
    request: AuthorizationRequest | None = None,
) -> bool:
    """Once the person signed in: keep the pending request ``interaction_lifetime``, and
    replace it by ``request`` if given; if it still exists and belongs to this browser."""
    kept = scripts.keep_interaction(
        redis,
        interaction=keys.interaction(interaction_id),
        binding=_binding(session),
        lifetime_ms=settings.interaction_lifetime * 1000,
        request=_encode(request) if request is not None else "",
    )
    return bool(await _unless_older(kept, 0))


async def take(
    redis: RedisClient, interaction_id: str, session: Session
) -> AuthorizationRequest | None:
    """Consume the pending request for the decision, if it belongs to this browser."""
    taken = scripts.take_interaction(
        redis, interaction=keys.interaction(interaction_id), binding=_binding(session)
    )
    raw = await _unless_older(taken, None)
    return _decode(raw) if raw else None
