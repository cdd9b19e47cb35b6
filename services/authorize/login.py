"""The sign-in page (``/login``): for a pending request, or for a page of Tessera's own
that needs someone signed in (the connected applications page)."""

from __future__ import annotations

import logging

from aiohttp import web

from services.authorize import backchannel_logout, devices, interactions, sessions
from services.authorize.authorization_request import enabled_client
from services.authorize.connected_apps import CONNECTED_APPS
from services.authorize.responses import render, see_other, with_interaction
from shared.storage.browser_sessions import Session
from shared.storage.clients import Client
from shared.storage.pending_requests import AuthorizationRequest
from shared.web import login_throttle
from shared.web.address_limits import limit_address
from shared.web.app_keys import REDIS, SETTINGS
from shared.web.client_address import limit_subject
from shared.web.forms import read_form
from shared.web.login_throttle import BUSY, Refused
from shared.web.logs import add_to_line
from shared.web.password_checks import PASSWORD_CHECKS

log = logging.getLogger("tessera.authorize")

LOGIN_FAILED = "The username or password is incorrect."
LOGIN_BUSY = "Many people are signing in right now. Try again in a moment."
# Where a sign-in that no application asked for may lead: a fixed list, never a URL from
# the request, so the login page is no open redirector (RFC 9700 §4.11).
SIGN_IN_TARGETS = (CONNECTED_APPS,)


def _render_login(
    request: web.Request,
    client: Client | None,
    session: Session,
    *,
    interaction_id: str = "",
    next_page: str = "",
    error: str = "",
    username: str = "",
    status: int = 200,
) -> web.Response:
    return render(
        request,
        "login.html",
        {
            "client": client,
            "interaction": interaction_id,
            "next": next_page,
            "csrf_token": session.csrf_token,
            "error": error,
            "username": username,
        },
        status=status,
    )


def login_limited(seconds: int) -> str:
    """What the sign-in page says when a sign-in limit refuses (shared.web.login_throttle)."""
    wait = f"{seconds} seconds" if seconds < 120 else f"{-(-seconds // 60)} minutes"
    return f"Too many sign-in attempts. Try again in {wait}."


async def login_page(request: web.Request) -> web.Response:
    redis, settings = request.app[REDIS], request.app[SETTINGS]
    await limit_address(request, "login", settings.login_page_rate)
    interaction_id = request.query.get("interaction", "")
    next_page = request.query.get("next", "")
    if not interaction_id and next_page in SIGN_IN_TARGETS:
        # A sign-in no application asked for (the connected applications page).
        current, is_new = await sessions.load_or_start(request)
        if sessions.who_is_signed_in(current) is not None:
            return see_other(next_page)
        response = _render_login(request, None, current, next_page=next_page)
        if is_new:
            sessions.set_cookie(response, settings, current)
        return response
    session = await sessions.load(request)
    if session is None:
        raise interactions.expired()  # the browser that started the interaction has a session
    auth_request = await interactions.pending(redis, interaction_id, session)
    client = await enabled_client(redis, auth_request.client_id)
    if sessions.who_is_signed_in(session) is not None and not auth_request.must_sign_in:
        return see_other(with_interaction("/consent", interaction_id))
    # OpenID Connect Core §3.1.2.1 login_hint: a name to prefill, nothing more.
    return _render_login(
        request,
        client,
        session,
        interaction_id=interaction_id,
        username=auth_request.login_hint or "",
    )


async def login_submit(request: web.Request) -> web.Response:
    redis, settings = request.app[REDIS], request.app[SETTINGS]
    await limit_address(request, "login", settings.login_page_rate)
    form = await read_form(request)
    session = await sessions.load_for_form(request, form.get("csrf_token"))
    interaction_id = form.get("interaction", "")
    next_page = form.get("next", "")
    client: Client | None = None
    auth_request: AuthorizationRequest | None = None
    if interaction_id or next_page not in SIGN_IN_TARGETS:
        auth_request = await interactions.pending(redis, interaction_id, session)
        client = await enabled_client(redis, auth_request.client_id)
    username = form.get("username", "")

    def again(error: str, status: int = 200) -> web.Response:
        # The sign-in page once more, for the same request, with the name as typed.
        return _render_login(
            request,
            client,
            session,
            interaction_id=interaction_id,
            next_page=next_page if client is None else "",
            error=error,
            username=username,
            status=status,
        )

    address = limit_subject(request, settings)
    known_device = devices.known(request, settings, username)
    if known_device:
        add_to_line(request, device="known")  # why the attempt was not paced
    user = await login_throttle.sign_in(
        redis,
        settings,
        request.app[PASSWORD_CHECKS],
        username=username,
        password=form.get("password", ""),
        address=address,
        known_device=known_device,
    )
    if isinstance(user, Refused):
        login_throttle.log_refusal(
            request, user, username, address, client_id=client.client_id if client else None
        )
        if not user.limited:
            # One message for a wrong username and a wrong password alike.
            return again(LOGIN_FAILED)
        # RFC 6585 §4: 429 with Retry-After, on the sign-in page to try again from.
        message = LOGIN_BUSY if user is BUSY else login_limited(user.retry_after)
        page = again(message, status=429)
        page.headers["Retry-After"] = str(user.retry_after)
        return page
    previous = sessions.who_is_signed_in(session)
    signed_in = await sessions.sign_in(request, session, user)
    if previous is not None and previous.sid != signed_in.sid:
        # Someone else signed in over a session: it ended, and its clients are told.
        await backchannel_logout.tell_session_ended(request, previous)
    log.info("user %s signed in", user.username)
    if auth_request is None:
        response = see_other(next_page)
    else:
        changed = None
        if auth_request.must_sign_in:
            # prompt=login is satisfied by this sign-in; the request goes on without it.
            auth_request.prompt = [p for p in auth_request.prompt if p != "login"]
            changed = auth_request
        # Kept from now on as long as a signed-in person's request.
        if not await interactions.keep(redis, settings, interaction_id, signed_in, changed):
            raise interactions.expired()
        response = see_other(with_interaction("/consent", interaction_id))
    sessions.set_cookie(response, settings, signed_in)
    devices.set_cookie(response, settings, user.username)
    return response
