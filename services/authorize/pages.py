"""The browser side: /authorize, the login page, the approval page and logout."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp_jinja2
from aiohttp import web

from services.authorize import interactions, sessions
from services.authorize.authorization_request import (
    AuthorizationRequest,
    RedirectableError,
    enabled_client,
    resolve_client,
    validate,
)
from shared import codes, crypto, families, login_throttle, metrics, scopes, tokens
from shared.app_keys import REDIS, SETTINGS, SIGNING_KEYS
from shared.clients import Client
from shared.codes import CodeRecord
from shared.errors import OAuthError
from shared.forms import collect, read_form, read_pairs, single_valued
from shared.login_throttle import Refused
from shared.logs import security_event
from shared.settings import Settings
from shared.tokens import Grant

if TYPE_CHECKING:
    from shared.redis_store import RedisClient

log = logging.getLogger("tessera.authorize")

LOGIN_FAILED = "The username or password is incorrect."
LOGIN_LOCKED = "Too many failed sign-ins for this username. Try again later."


def see_other(location: str) -> web.Response:
    # 303 so a POST is never replayed at the target (RFC 9700 §4.12).
    return web.Response(status=303, headers={"Location": location})


def redirect_to_client(
    settings: Settings,
    redirect_uri: str,
    params: dict[str, str | None],
    *,
    in_fragment: bool = False,
) -> web.Response:
    """Back to the client with ``params`` and ``iss`` (RFC 9207 §2): added to the redirect
    URI's own query (RFC 6749 §3.1.2 keeps it), or for the implicit grant in the fragment
    (RFC 6749 §4.2.2), which the browser never sends to a server."""
    parts = urlsplit(redirect_uri)
    added = urlencode(
        {k: v for k, v in {**params, "iss": settings.issuer}.items() if v is not None}
    )
    if in_fragment:
        return see_other(urlunsplit(parts._replace(fragment=added)))
    query = f"{parts.query}&{added}" if parts.query else added
    return see_other(urlunsplit(parts._replace(query=query)))


def error_redirect(settings: Settings, exc: RedirectableError) -> web.Response:
    return redirect_to_client(
        settings,
        exc.redirect_uri,
        {"error": exc.error, "error_description": exc.description, "state": exc.state},
        in_fragment=exc.in_fragment,
    )


def _expired() -> OAuthError:
    return OAuthError(
        "invalid_request",
        "This sign-in request has expired or is unknown. "
        "Go back to the application and start again.",
        cause="interaction unknown, expired, or started by another browser session",
    )


def _csrf_failed() -> OAuthError:
    return OAuthError(
        "invalid_request",
        "The form has expired. Go back to the application and start again.",
        status=403,
        cause="missing or wrong CSRF token",
    )


async def _pending(
    redis: RedisClient, interaction_id: str | None, session: sessions.Session
) -> AuthorizationRequest:
    request = await interactions.get(redis, interaction_id, session) if interaction_id else None
    if request is None:
        raise _expired()
    return request


def _to_login_or_consent(
    settings: Settings, session: sessions.Session, is_new: bool, interaction_id: str
) -> web.Response:
    page = "/consent" if session.signed_in else "/login"
    response = see_other(f"{page}?{urlencode({'interaction': interaction_id})}")
    if is_new:
        sessions.set_cookie(response, settings, session)
    return response


async def authorize(request: web.Request) -> web.Response:
    """RFC 6749 §4.1.1 (GET and POST, RFC 6749 §3.1)."""
    redis, settings = request.app[REDIS], request.app[SETTINGS]
    pairs = await read_pairs(request) if request.method == "POST" else request.query.items()
    params, repeated = collect(pairs)
    client, redirect_uri = await resolve_client(redis, params, repeated)
    try:
        auth_request = await validate(redis, settings, client, redirect_uri, params, repeated)
    except RedirectableError as exc:
        log.info("authorization request of client %s rejected: %s", client.client_id, exc.cause)
        # Reported by redirect, so the error middleware never counts it.
        metrics.oauth_error(request, exc.error)
        return error_redirect(settings, exc)
    if auth_request.implicit:
        tokens.check_can_sign_for(client, settings, request.app[SIGNING_KEYS])
    if request.method == "POST":
        # A cross-site POST carries no SameSite=Lax cookie; answering it with a new session
        # would sign the person out. Carry on in a GET, which does carry the cookie.
        interaction_id = await interactions.create(redis, settings, auth_request, None)
        return see_other(f"/authorize/resume?{urlencode({'interaction': interaction_id})}")
    session, is_new = await sessions.load_or_start(request)
    interaction_id = await interactions.create(redis, settings, auth_request, session)
    return _to_login_or_consent(settings, session, is_new, interaction_id)


async def resume(request: web.Request) -> web.Response:
    """Bind a request that arrived by POST to this browser, then go on as after a GET."""
    redis, settings = request.app[REDIS], request.app[SETTINGS]
    interaction_id = request.query.get("interaction", "")
    session, is_new = await sessions.load_or_start(request)
    if not interaction_id or not await interactions.claim(redis, interaction_id, session):
        raise _expired()
    return _to_login_or_consent(settings, session, is_new, interaction_id)


def _render_login(
    request: web.Request,
    client: Client,
    interaction_id: str,
    session: sessions.Session,
    error: str = "",
    username: str = "",
) -> web.Response:
    return render(
        request,
        "login.html",
        {
            "client": client,
            "interaction": interaction_id,
            "csrf_token": session.csrf_token,
            "error": error,
            "username": username,
        },
    )


async def login_page(request: web.Request) -> web.Response:
    redis = request.app[REDIS]
    interaction_id = request.query.get("interaction", "")
    session = await sessions.load(request)
    if session is None:
        raise _expired()  # the browser that started the interaction has a session
    auth_request = await _pending(redis, interaction_id, session)
    client = await enabled_client(redis, auth_request.client_id)
    if session.signed_in:
        return see_other(f"/consent?{urlencode({'interaction': interaction_id})}")
    return _render_login(request, client, interaction_id, session)


async def login_submit(request: web.Request) -> web.Response:
    redis, settings = request.app[REDIS], request.app[SETTINGS]
    form = await read_form(request)
    session = await sessions.load(request)
    if session is None or not sessions.csrf_matches(session, form.get("csrf_token")):
        raise _csrf_failed()
    interaction_id = form.get("interaction", "")
    auth_request = await _pending(redis, interaction_id, session)
    client = await enabled_client(redis, auth_request.client_id)
    username = form.get("username", "")
    # Logged as a digest: people type their password into the username field.
    who = crypto.digest(username)[:12]
    user = await login_throttle.sign_in(redis, settings, username, form.get("password", ""))
    if user is Refused.LOCKED:
        security_event("login_locked", username_digest=who, client_id=client.client_id)
        return _render_login(
            request, client, interaction_id, session, error=LOGIN_LOCKED, username=username
        )
    if user is Refused.WRONG:
        security_event("login_failed", username_digest=who, client_id=client.client_id)
        # One message for a wrong username and a wrong password alike.
        return _render_login(
            request, client, interaction_id, session, error=LOGIN_FAILED, username=username
        )
    signed_in = await sessions.sign_in(request, session, user)
    log.info("user %s signed in", user.username)
    response = see_other(f"/consent?{urlencode({'interaction': interaction_id})}")
    sessions.set_cookie(response, settings, signed_in)
    return response


async def consent_page(request: web.Request) -> web.Response:
    redis = request.app[REDIS]
    interaction_id = request.query.get("interaction", "")
    session = await sessions.load(request)
    if session is None:
        raise _expired()
    auth_request = await _pending(redis, interaction_id, session)
    if not session.signed_in:
        return see_other(f"/login?{urlencode({'interaction': interaction_id})}")
    client = await enabled_client(redis, auth_request.client_id)
    defined = await scopes.get_many(redis, auth_request.scope)
    return render(
        request,
        "consent.html",
        {
            "client": client,
            "scopes": [defined.get(name) or scopes.Scope(name) for name in auth_request.scope],
            "interaction": interaction_id,
            "csrf_token": session.csrf_token,
            "username": session.username,
        },
    )


async def consent_submit(request: web.Request) -> web.Response:
    redis, settings = request.app[REDIS], request.app[SETTINGS]
    pairs = await read_pairs(request)
    # One "scope" field per ticked checkbox; every other field once.
    ticked = {value for name, value in pairs if name == "scope"}
    form = single_valued((name, value) for name, value in pairs if name != "scope")
    session = await sessions.load(request)
    if session is None or not sessions.csrf_matches(session, form.get("csrf_token")):
        raise _csrf_failed()
    if not session.signed_in or session.username is None or session.sub is None:
        raise _expired()
    interaction_id = form.get("interaction")
    # Consumed here, whatever the decision: one decision per request.
    auth_request = (
        await interactions.take(redis, interaction_id, session) if interaction_id else None
    )
    if auth_request is None:
        raise _expired()
    client = await enabled_client(redis, auth_request.client_id)

    def deny(description: str) -> web.Response:
        log.info("user %s denied client %s", session.username, client.client_id)
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
    approved = [name for name in auth_request.scope if name in ticked]
    if not approved:
        return deny("The resource owner approved none of the requested scopes.")
    log.info("user %s approved %s for client %s", session.username, approved, client.client_id)
    if auth_request.implicit:
        return await _implicit_response(request, client, auth_request, session, approved)
    code = await codes.create(
        redis,
        settings,
        CodeRecord(
            family=families.new_family(),
            client_id=client.client_id,
            redirect_uri=auth_request.redirect_uri_param,
            username=session.username,
            sub=session.sub,
            scope=approved,
            code_challenge=auth_request.code_challenge,
            code_challenge_method=auth_request.code_challenge_method,
        ),
    )
    return redirect_to_client(
        settings, auth_request.redirect_uri, {"code": code, "state": auth_request.state}
    )


async def _implicit_response(
    request: web.Request,
    client: Client,
    auth_request: AuthorizationRequest,
    session: sessions.Session,
    approved: list[str],
) -> web.Response:
    """RFC 6749 §4.2.2: the access token in the fragment, never a refresh token."""
    redis, settings = request.app[REDIS], request.app[SETTINGS]
    assert session.username is not None and session.sub is not None
    grant = Grant(families.new_family(), client.client_id, approved, session.username, session.sub)
    issued = await tokens.issue(
        redis, settings, client, grant, key_set=request.app[SIGNING_KEYS], refreshable=False
    )
    assert issued is not None  # a new family cannot have been revoked
    metrics.grant_issued(request, "implicit")
    expires_in = str(issued.expires_in) if issued.expires_in is not None else None
    return redirect_to_client(
        settings,
        auth_request.redirect_uri,
        {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "scope": " ".join(issued.scope),
            "state": auth_request.state,
        },
        in_fragment=True,
    )


async def logout_page(request: web.Request) -> web.Response:
    session = await sessions.load(request)
    return render(request, "logout.html", {"session": session, "done": False})


async def logout_submit(request: web.Request) -> web.Response:
    form = await read_form(request)
    session = await sessions.load(request)
    if session is None or not sessions.csrf_matches(session, form.get("csrf_token")):
        raise _csrf_failed()
    await sessions.end(request, session)
    response = render(request, "logout.html", {"session": None, "done": True})
    sessions.clear_cookie(response, request.app[SETTINGS])
    return response


def render(
    request: web.Request, template: str, context: dict[str, object], status: int = 200
) -> web.Response:
    """A page with the approval page branding (the seed's approvalpage.* settings)."""
    settings = request.app[SETTINGS]
    branding = {
        "title": settings.approval_title,
        "header": settings.approval_header,
        "logo_url": settings.approval_logo_url,
        "footer": settings.approval_footer,
    }
    return aiohttp_jinja2.render_template(
        template, request, {**context, "brand": branding}, status=status
    )
