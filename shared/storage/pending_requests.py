"""Pending authorization requests (interactions) between ``/authorize`` and the person's
decision.

This is webMethods Integration Server's "PKCE cache": the validated request, PKCE
challenge included, stored under a random interaction id with a short TTL. It is bound to
the browser that started it (the session's server-side ``browser`` value), so an
interaction id learned by someone else is worth nothing in their browser. The decision
takes it with a script that checks the binding and deletes in one step, so one approval
yields at most one code.

Anyone can start one without signing in, so each is small and brief: one string, the
binding, the request as a JSON array, then the state as sent (it alone may be 1,024
characters), for the lifetime the caller gives (``services.authorize.interactions``:
short until the person signs in; README, "Rate limits and memory").
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import orjson
from redis.exceptions import ResponseError

from shared.domain.claims_request import ClaimsRequest
from shared.domain.openid import OPENID
from shared.security import crypto
from shared.storage import keys, scripts

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient


@dataclass(slots=True)
class AuthorizationRequest:
    """A validated authorization request (``services.authorize.authorization_request``)."""

    client_id: str
    # The redirect_uri parameter as given (None when absent) and the URI redirected to.
    redirect_uri_param: str | None
    redirect_uri: str
    scope: list[str]
    state: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    response_type: str = "code"
    # The prompt values among ``authorization_request.PROMPTS``; "login" is dropped once
    # the person has signed in again for this request.
    prompt: list[str] = field(default_factory=list)
    # OpenID Connect Core §3.1.2.1: echoed in the ID token; the maximum age in seconds of
    # the sign-in; the username to prefill; the claims parameter (§5.5) as
    # ``shared.domain.claims_request`` parsed it; the sub of a valid id_token_hint.
    nonce: str | None = None
    max_age: int | None = None
    login_hint: str | None = None
    claims: ClaimsRequest | None = None
    hint_sub: str | None = None

    @property
    def openid(self) -> bool:
        """An OpenID Connect authentication request (Core §3.1.2.1): the openid scope."""
        return OPENID in self.scope

    @property
    def implicit(self) -> bool:
        return self.response_type == "token"

    @property
    def silent(self) -> bool:
        """prompt=none: answer without showing the person any page."""
        return "none" in self.prompt

    @property
    def must_sign_in(self) -> bool:
        """prompt=login: the person signs in again, even with a session."""
        return "login" in self.prompt

    @property
    def must_ask(self) -> bool:
        """prompt=consent: show the approval page even when an approval is remembered."""
        return "consent" in self.prompt


# The stored value begins with the binding: 128 bits of the browser value's digest,
# always this long. Not bound yet (a request that arrived by POST, until ``claim``):
# dots, which no digest contains.
_BINDING_LENGTH = 22
UNBOUND = "." * _BINDING_LENGTH
# The fields of a request stored by a release before OpenID Connect (which reads the
# first nine of any request); OpenID Connect's, when all are absent, take no bytes.
_BEFORE_OPENID = 9
T = TypeVar("T")


def _binding(browser: str) -> str:
    return crypto.digest(browser)[:_BINDING_LENGTH]


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
        # OpenID Connect's, appended.
        request.nonce,
        request.max_age,
        request.login_hint,
        request.claims,
        request.hint_sub,
    ]
    while fields[-1] is None and len(fields) > _BEFORE_OPENID:
        fields.pop()
    # JSON from orjson holds no raw newline, and a state holds visible ASCII only.
    return f"{orjson.dumps(fields).decode()}\n{request.state or ''}"


def _decode(stored: str) -> AuthorizationRequest:
    array, _, state = stored.partition("\n")
    fields = orjson.loads(array)
    client_id, redirect_uri, given, scope, has_state, challenge, method, response_type, prompt = (
        fields[:_BEFORE_OPENID]
    )
    nonce, max_age, login_hint, claims, hint_sub = [*fields[_BEFORE_OPENID:], *[None] * 5][:5]
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
        nonce=nonce,
        max_age=max_age,
        login_hint=login_hint,
        claims=claims,
        hint_sub=hint_sub,
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
    redis: RedisClient, request: AuthorizationRequest, browser: str | None, lifetime: int
) -> str:
    """Store the request for ``lifetime`` seconds, bound to ``browser``, or unbound until
    ``claim``; its new interaction id."""
    interaction_id = crypto.random_token(16)
    await redis.set(
        keys.interaction(interaction_id),
        (UNBOUND if browser is None else _binding(browser)) + _encode(request),
        ex=lifetime,
    )
    return interaction_id


async def claim(redis: RedisClient, interaction_id: str, browser: str) -> bool:
    """Bind an unbound interaction to ``browser``; true when it is (now) that browser's."""
    claimed = scripts.claim_interaction(
        redis, interaction=keys.interaction(interaction_id), binding=_binding(browser)
    )
    return bool(await _unless_older(claimed, 0))


async def get(redis: RedisClient, interaction_id: str, browser: str) -> AuthorizationRequest | None:
    """The pending request, when it exists and belongs to ``browser``."""
    stored = await _unless_older(redis.get(keys.interaction(interaction_id)), None)
    if stored is None or not crypto.same(stored[:_BINDING_LENGTH], _binding(browser)):
        return None
    return _decode(stored[_BINDING_LENGTH:])


async def keep(
    redis: RedisClient,
    interaction_id: str,
    browser: str,
    lifetime: int,
    request: AuthorizationRequest | None = None,
) -> bool:
    """Keep the pending request ``lifetime`` seconds from now, and replace it by ``request``
    if given; if it still exists and belongs to ``browser``."""
    kept = scripts.keep_interaction(
        redis,
        interaction=keys.interaction(interaction_id),
        binding=_binding(browser),
        lifetime_ms=lifetime * 1000,
        request=_encode(request) if request is not None else "",
    )
    return bool(await _unless_older(kept, 0))


async def take(
    redis: RedisClient, interaction_id: str, browser: str
) -> AuthorizationRequest | None:
    """Consume the pending request, if it belongs to ``browser``."""
    taken = scripts.take_interaction(
        redis, interaction=keys.interaction(interaction_id), binding=_binding(browser)
    )
    raw = await _unless_older(taken, None)
    return _decode(raw) if raw else None
