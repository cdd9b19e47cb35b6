"""The sign-out page (``/logout``)."""

from __future__ import annotations

from aiohttp import web

from services.authorize import sessions
from services.authorize.responses import render
from shared.web.app_keys import SETTINGS
from shared.web.forms import read_form


async def logout_page(request: web.Request) -> web.Response:
    session = await sessions.load(request)
    return render(request, "logout.html", {"session": session, "done": False})


async def logout_submit(request: web.Request) -> web.Response:
    form = await read_form(request)
    session = await sessions.load_for_form(request, form.get("csrf_token"))
    signed_in = sessions.who_is_signed_in(session)
    if signed_in is not None:
        await sessions.end(request, signed_in)
    # Signed in or not, the browser forgets its session id.
    response = render(request, "logout.html", {"session": None, "done": True})
    sessions.clear_cookie(response, request.app[SETTINGS])
    return response
