"""Pending authorization requests between ``/authorize`` and the person's decision, as the
pages keep them: bound to the browser's session, and brief while nobody has signed in.

Anyone can start one without signing in, so each lives
``anonymous_interaction_lifetime`` until the person signs in, then
``interaction_lifetime`` (README, "Rate limits and memory"). What is stored, and how, is
``shared.storage.pending_requests``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.authorize.sessions import who_is_signed_in
from shared.config.settings import Settings
from shared.domain.oauth_errors import OAuthError
from shared.storage import pending_requests
from shared.storage.browser_sessions import Session, SignedIn
from shared.storage.pending_requests import AuthorizationRequest

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient


async def create(
    redis: RedisClient, settings: Settings, request: AuthorizationRequest, session: Session | None
) -> str:
    """Store the request, bound to ``session``'s browser, or unbound until ``claim``;
    brief until someone signed in has it (``keep``)."""
    signed_in = who_is_signed_in(session) is not None
    return await pending_requests.create(
        redis,
        request,
        session.browser if session else None,
        settings.interaction_lifetime if signed_in else settings.anonymous_interaction_lifetime,
    )


async def claim(redis: RedisClient, interaction_id: str, session: Session) -> bool:
    """Bind an unbound interaction to this browser; true when it is (now) this browser's."""
    return await pending_requests.claim(redis, interaction_id, session.browser)


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
    request = None
    if interaction_id:
        request = await pending_requests.get(redis, interaction_id, session.browser)
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
    return await pending_requests.keep(
        redis, interaction_id, session.browser, settings.interaction_lifetime, request
    )


async def take(
    redis: RedisClient, interaction_id: str, session: Session
) -> AuthorizationRequest | None:
    """Consume the pending request for the decision, if it belongs to this browser."""
    return await pending_requests.take(redis, interaction_id, session.browser)
