"""The approval page (``/consent``) and remembered approvals: the signed-in person's
decision on a pending request, answered by a code or token (RFC 6749 §4.1.2, §4.2.2) or
``access_denied`` (§4.1.2.1)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

from services.authorize import interactions, sessions
from services.authorize.authorization_request import RedirectableError, enabled_client
from services.authorize.authorization_response import error_redirect, issue
from services.authorize.responses import render, see_other, with_interaction
from shared.storage import consents, scopes
from shared.storage.browser_sessions import SignedIn
from shared.storage.clients import Client
from shared.storage.pending_requests import AuthorizationRequest
from shared.web import metrics
from shared.web.app_keys import REDIS, SETTINGS
from shared.web.forms import read_pairs, single_valued

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient

log = logging.getLogger("tessera.authorize")


async def remembered(
    redis: RedisClient,
    client: Client,
    signed_in: SignedIn,
    auth_request: AuthorizationRequest,
) -> bool:
    """The approval page may be skipped: the client remembers consent, the request does
    not insist on the page or a new sign-in, and this person approved every requested
    scope for this client before. The redirect URI needs no check here: /authorize
    accepted only one registered for the client, by exact match (RFC 9700 §4.1.3)."""
    if not client.remember_consent or auth_request.must_ask or auth_request.must_sign_in:
        return False
    consent = await consents.get(redis, signed_in.username, client.client_id)
    return consent is not None and consent.covers(auth_request.scope)


async def answer_if_remembered(
    request: web.Request,
    signed_in: SignedIn,
    interaction_id: str,
    auth_request: AuthorizationRequest,
) -> web.Response | None:
    """The code (or implicit token) for a remembered approval, or None to ask."""
    redis = request.app[REDIS]
    client = await enabled_client(redis, auth_request.client_id)
    if not await remembered(redis, client, signed_in, auth_request):
        return None
    # Consumed as a decision on the page would be: one answer per request.
    taken = await interactions.take(redis, interaction_id, signed_in)
    if taken is None:
        raise interactions.expired()
    await consents.touch(redis, signed_in.username, client.client_id)
    log.info(
        "user %s: remembered approval of %s for client %s",
        signed_in.username,
        taken.scope,
        client.client_id,
    )
    # Exactly what was requested, which the remembered approval covers: never more.
    return await issue(request, client, taken, signed_in, taken.scope)


async def consent_page(request: web.Request) -> web.Response:
    redis = request.app[REDIS]
    interaction_id = request.query.get("interaction", "")
    session = await sessions.load(request)
    if session is None:
        raise interactions.expired()
    auth_request = await interactions.pending(redis, interaction_id, session)
    signed_in = sessions.who_is_signed_in(session)
    if signed_in is None or auth_request.must_sign_in:
        return see_other(with_interaction("/login", interaction_id))
    # Signed in on another tab's login page since: a remembered approval answers now.
    answer = await answer_if_remembered(request, signed_in, interaction_id, auth_request)
    if answer is not None:
        return answer
    client = await enabled_client(redis, auth_request.client_id)
    defined = await scopes.get_many(redis, auth_request.scope)
    return render(
        request,
        "consent.html",
        {
            "client": client,
            "scopes": [defined.get(name) or scopes.Scope(name) for name in auth_request.scope],
            "interaction": interaction_id,
            "csrf_token": signed_in.csrf_token,
            "username": signed_in.username,
        },
    )


async def consent_submit(request: web.Request) -> web.Response:
    redis, settings = request.app[REDIS], request.app[SETTINGS]
    pairs = await read_pairs(request)
    # One "scope" field per ticked checkbox; every other field once.
    ticked = {value for name, value in pairs if name == "scope"}
    form = single_valued((name, value) for name, value in pairs if name != "scope")
    session = await sessions.load_for_form(request, form.get("csrf_token"))
    signed_in = sessions.who_is_signed_in(session)
    if signed_in is None:
        raise interactions.expired()
    interaction_id = form.get("interaction")
    # Consumed here, whatever the decision: one decision per request.
    auth_request = (
        await interactions.take(redis, interaction_id, signed_in) if interaction_id else None
    )
    if auth_request is None or auth_request.must_sign_in:
        # prompt=login and not signed in again: a form posted past the login page.
        raise interactions.expired()
    client = await enabled_client(redis, auth_request.client_id)
    approved = (
        [name for name in auth_request.scope if name in ticked]
        if form.get("decision") == "approve"
        else []
    )
    # The page showed the requested scopes: for those the person's decision now stands,
    # ticked ones remembered and unticked (or denied) ones forgotten (shared/storage/consents.py).
    await consents.record(redis, signed_in.username, client.client_id, auth_request.scope, approved)

    def deny(description: str) -> web.Response:
        log.info("user %s denied client %s", signed_in.username, client.client_id)
        metrics.oauth_error(request, "access_denied")
        return error_redirect(
            settings,
            RedirectableError(
                "access_denied",
                description,
                auth_request.redirect_uri,
                auth_request.state,
                in_fragment=auth_request.implicit,
            ),
        )

    if form.get("decision") != "approve":
        return deny("The resource owner denied the request.")
    if not approved:
        return deny("The resource owner approved none of the requested scopes.")
    log.info("user %s approved %s for client %s", signed_in.username, approved, client.client_id)
    return await issue(request, client, auth_request, signed_in, approved)
