"""The authorization endpoint (RFC 6749 §3.1): ``/authorize``, and ``/authorize/resume``
for a request that arrived by POST. A valid request is stored as an interaction; the
browser goes on to sign in, then to the approval page, unless the answer is known at
once (prompt=none, or a remembered approval)."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from redis.exceptions import RedisError

from services.authorize import interactions, sessions
from services.authorize.authorization_request import (
    RedirectableError,
    enabled_client,
    resolve_client,
    validate,
)
from services.authorize.authorization_response import error_redirect, issue
from services.authorize.consent import answer_if_remembered, remembered
from services.authorize.responses import see_other, with_interaction
from shared.storage import consents, subjects
from shared.storage.browser_sessions import Session, SignedIn
from shared.storage.clients import Client
from shared.storage.pending_requests import AuthorizationRequest
from shared.storage.redis_access.errors import is_unavailable
from shared.storage.token_minting import check_can_sign_for
from shared.web import metrics
from shared.web.address_limits import limit_address
from shared.web.app_keys import REDIS, SETTINGS, TESSERA
from shared.web.forms import collect, read_pairs
from shared.web.logs import add_to_line

log = logging.getLogger("tessera.authorize")


async def authorize(request: web.Request) -> web.Response:
    """RFC 6749 §4.1.1 (GET and POST, RFC 6749 §3.1)."""
    redis, settings = request.app[REDIS], request.app[SETTINGS]
    # Before anything is read or stored: a refused request costs one counter.
    await limit_address(request, "authorize", settings.authorize_rate)
    pairs = await read_pairs(request) if request.method == "POST" else request.query.items()
    params, repeated = collect(pairs)
    client, redirect_uri = await resolve_client(redis, params, repeated)
    try:
        return await _authorize_valid_client(request, client, redirect_uri, params, repeated)
    except RedirectableError as exc:
        log.info("authorization request of client %s rejected: %s", client.client_id, exc.cause)
        # Reported by redirect, so the error middleware never counts it.
        metrics.oauth_error(request, exc.error)
        return error_redirect(settings, exc)
    except RedisError as exc:
        if not is_unavailable(exc):
            raise
        # RFC 6749 §4.1.2.1: once client and redirect URI are known, even "the server
        # cannot answer for now" (temporarily_unavailable) goes back to the client.
        metrics.redis_error(request, exc)
        metrics.oauth_error(request, "temporarily_unavailable")
        add_to_line(request, redis_error=type(exc).__name__)
        return error_redirect(
            settings,
            RedirectableError(
                "temporarily_unavailable",
                "The service is temporarily unavailable; try again shortly.",
                redirect_uri,
                params.get("state"),
                in_fragment=params.get("response_type") == "token",
            ),
        )


async def _authorize_valid_client(
    request: web.Request,
    client: Client,
    redirect_uri: str,
    params: dict[str, str],
    repeated: set[str],
) -> web.Response:
    """``authorize`` once the client and its redirect URI are known to be right."""
    redis, settings = request.app[REDIS], request.app[SETTINGS]
    auth_request = await validate(request.app[TESSERA], client, redirect_uri, params, repeated)
    if auth_request.implicit:
        check_can_sign_for(request.app[TESSERA], client)
    if request.method == "POST":
        # A cross-site POST carries no SameSite=Lax cookie; answering it with a new session
        # would sign the person out. Carry on in a GET, which does carry the cookie.
        interaction_id = await interactions.create(redis, settings, auth_request, None)
        return see_other(with_interaction("/authorize/resume", interaction_id))
    session, is_new = await sessions.load_or_start(request)
    signed_in = sessions.who_is_signed_in(session)
    if signed_in is not None and await _must_sign_in_again(request, signed_in, auth_request):
        _ask_to_sign_in(auth_request)
    interaction_id = await interactions.create(redis, settings, auth_request, session)
    return await _proceed(request, session, is_new, interaction_id, auth_request)


async def resume(request: web.Request) -> web.Response:
    """Bind a request that arrived by POST to this browser, then go on as after a GET."""
    redis = request.app[REDIS]
    interaction_id = request.query.get("interaction", "")
    session, is_new = await sessions.load_or_start(request)
    if not interaction_id or not await interactions.claim(redis, interaction_id, session):
        raise interactions.expired()
    auth_request = await interactions.pending(redis, interaction_id, session)
    signed_in = sessions.who_is_signed_in(session)
    if signed_in is not None:
        changed = None
        if await _must_sign_in_again(request, signed_in, auth_request):
            changed = _ask_to_sign_in(auth_request)
        # Stored unbound and brief, as anyone's; someone signed in has it now.
        await interactions.keep(redis, request.app[SETTINGS], interaction_id, signed_in, changed)
    return await _proceed(request, session, is_new, interaction_id, auth_request)


async def _must_sign_in_again(
    request: web.Request, signed_in: SignedIn, auth_request: AuthorizationRequest
) -> bool:
    """OpenID Connect Core §3.1.2.1: the person signs in again when their sign-in is older
    than max_age (0: always), or when the id_token_hint names someone else; and for an
    OpenID Connect request, a session a release before OpenID Connect started, which
    knows neither when the person signed in nor its sid."""
    if auth_request.openid and not signed_in.sid:
        return True
    if auth_request.max_age is not None:
        if time.time() - signed_in.auth_time >= auth_request.max_age:
            return True
    if auth_request.hint_sub is not None:
        redis = request.app[REDIS]
        client = await enabled_client(redis, auth_request.client_id)
        return await subjects.subject_for(redis, client, signed_in.sub) != auth_request.hint_sub
    return False


def _ask_to_sign_in(auth_request: AuthorizationRequest) -> AuthorizationRequest:
    """The request with prompt=login, unless it is prompt=none, which never shows a page
    (``_answer_silently`` answers login_required then)."""
    if not auth_request.silent and not auth_request.must_sign_in:
        auth_request.prompt = [*auth_request.prompt, "login"]
    return auth_request


async def _proceed(
    request: web.Request,
    session: Session,
    is_new: bool,
    interaction_id: str,
    auth_request: AuthorizationRequest,
) -> web.Response:
    """After /authorize: answer at once (prompt=none, or a remembered approval), or on to
    the login or approval page."""
    signed_in = sessions.who_is_signed_in(session)
    if auth_request.silent:
        response = await _answer_silently(request, session, interaction_id)
    elif signed_in is not None and not auth_request.must_sign_in:
        response = await answer_if_remembered(
            request, signed_in, interaction_id, auth_request
        ) or see_other(with_interaction("/consent", interaction_id))
    else:
        response = see_other(with_interaction("/login", interaction_id))
    if is_new:
        sessions.set_cookie(response, request.app[SETTINGS], session)
    return response


async def _answer_silently(
    request: web.Request, session: Session, interaction_id: str
) -> web.Response:
    """prompt=none (OpenID Connect Core §3.1.2.1): the code or token when the person is
    signed in and the approval is remembered; otherwise login_required or
    consent_required, by redirect (§3.1.2.6), never a page."""
    redis, settings = request.app[REDIS], request.app[SETTINGS]
    taken = await interactions.take(redis, interaction_id, session)
    if taken is None:
        raise interactions.expired()
    client = await enabled_client(redis, taken.client_id)
    signed_in = sessions.who_is_signed_in(session)
    if signed_in is None:
        error, description = "login_required", "The resource owner is not signed in."
    elif await _must_sign_in_again(request, signed_in, taken):
        error, description = "login_required", "The resource owner must sign in again."
    elif await remembered(redis, client, signed_in, taken):
        await consents.touch(redis, signed_in.username, client.client_id)
        return await issue(request, client, taken, signed_in, taken.scope)
    else:
        error, description = "consent_required", "The resource owner has not approved this."
    metrics.oauth_error(request, error)
    return error_redirect(
        settings,
        RedirectableError(
            error, description, taken.redirect_uri, taken.state, in_fragment=taken.implicit
        ),
    )
