"""The sign-out page (``/logout``), and signing out itself, which ``/end_session``
(RP-Initiated Logout) shares: the session ends, and the clients that received ID tokens
in it are told (Back-Channel Logout 1.0). Tokens issued in the session stay valid: they
belong to the applications, which revoke them if they wish (README, "Signing out")."""

from __future__ import annotations

from aiohttp import web

from services.authorize import backchannel_logout, sessions
from services.authorize.responses import render
from shared.storage.browser_sessions import SignedIn
from shared.web.app_keys import SETTINGS
from shared.web.forms import read_form


async def sign_out(request: web.Request, signed_in: SignedIn) -> None:
    """End the session, then queue a logout token for each client recorded in it."""
    await sessions.end(request, signed_in)
    await backchannel_logout.tell_session_ended(request, signed_in)


def signed_out_page(request: web.Request, notice: str = "") -> web.Response:
    """The signed-out page; the browser forgets its session id, whoever was signed in."""
    response = render(request, "logout.html", {"session": None, "done": True, "notice": notice})
    sessions.clear_cookie(response, request.app[SETTINGS])
    return response


async def logout_page(request: web.Request) -> web.Response:
    session = await sessions.load(request)
    return render(request, "logout.html", {"session": session, "done": False})


async def logout_submit(request: web.Request) -> web.Response:
    form = await read_form(request)
    session = await sessions.load_for_form(request, form.get("csrf_token"))
    signed_in = sessions.who_is_signed_in(session)
    if signed_in is not None:
        await sign_out(request, signed_in)
    return signed_out_page(request)
