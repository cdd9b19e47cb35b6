"""The connected applications page (``/connected-apps``): the applications the
signed-in person has approved, and a way to revoke each."""

from __future__ import annotations

import logging
import time
from urllib.parse import urlencode

from aiohttp import web

from services.authorize import backchannel_logout, sessions
from services.authorize.responses import render, see_other
from shared.security import fingerprint
from shared.storage import clients, consents, management, scopes
from shared.web.app_keys import REDIS
from shared.web.forms import read_form

log = logging.getLogger("tessera.authorize")

CONNECTED_APPS = "/connected-apps"
REVOKED = "Access removed. The application must ask you again before it can use your account."


def _sign_in_first() -> web.Response:
    return see_other(f"/login?{urlencode({'next': CONNECTED_APPS})}")


def _when(timestamp: int) -> dict[str, str]:
    """A time as people read it (UTC, stated) and as ``<time datetime>`` carries it."""
    t = time.gmtime(timestamp)
    return {
        "iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", t),
        "text": f"{t.tm_mday} {time.strftime('%B %Y, %H:%M', t)} UTC",
    }


async def connected_apps_page(request: web.Request) -> web.Response:
    """The applications the signed-in person has approved, and a way to revoke each."""
    redis = request.app[REDIS]
    signed_in = sessions.who_is_signed_in(await sessions.load(request))
    if signed_in is None:
        return _sign_in_first()
    approvals = await consents.list_for(redis, signed_in.username)
    found = [(await clients.get(redis, c.client_id), c) for c in approvals]
    defined = await scopes.get_many(redis, sorted({n for c in approvals for n in c.scope}))
    apps = [
        {
            "client": client,
            "scopes": [defined.get(name) or scopes.Scope(name) for name in consent.scope],
            "first_approved": _when(consent.first_approved),
            "last_used": _when(consent.last_used),
        }
        # A client deleted meanwhile has no tokens left to revoke and nothing to show.
        for client, consent in found
        if client is not None
    ]
    return render(
        request,
        "connected_apps.html",
        {
            "apps": apps,
            "username": signed_in.username,
            "csrf_token": signed_in.csrf_token,
            "revoked": REVOKED if request.query.get("revoked") == "1" else "",
        },
    )


async def connected_apps_revoke(request: web.Request) -> web.Response:
    """Revoke one application: forget the approval and revoke every token it holds for
    this person (shared.storage.management.revoke_user_client), and tell it by its
    back-channel logout URI (``backchannel_logout``). Only the signed-in
    person's own grants are touched, whatever client id the form names; an unknown one
    changes nothing."""
    redis = request.app[REDIS]
    form = await read_form(request)
    session = await sessions.load_for_form(request, form.get("csrf_token"))
    signed_in = sessions.who_is_signed_in(session)
    if signed_in is None:
        return _sign_in_first()
    client_id = form.get("client_id", "")
    openid = await backchannel_logout.openid_approved(request, signed_in.username, client_id)
    revoked = await management.revoke_user_client(redis, signed_in.username, client_id)
    # Back-Channel Logout 1.0: its sessions of this person end with its tokens.
    await backchannel_logout.tell_access_removed(
        request, signed_in, client_id, openid_approved=openid
    )
    # The form's client id is the caller's: named in the log only if it names a client.
    named = client_id if await clients.get(redis, client_id) else fingerprint.of(client_id)
    log.info("user %s revoked client %s (%d grant(s))", signed_in.username, named, revoked)
    # 303: reloading the list never posts the form again (RFC 9700 §4.12).
    return see_other(f"{CONNECTED_APPS}?revoked=1")
