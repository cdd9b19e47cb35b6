"""Device cookies: a browser that signed in as a username is known to it for a while,
wherever it is (OWASP's "device cookie" against lockout; README "Sign-in limits").

A known address (``shared.web.login_throttle``) keeps the owner's sign-ins from home free of
the per-username pace; a device cookie does the same for the owner's browser on a new
network, which an attacker holding the pace would otherwise keep out. A successful
sign-in at the sign-in page sets it; a later attempt for the same username that carries
it counts as known (the per-(username, address) limit still holds).

The value is ``<expiry>.<mac>``: the Unix time it ends at and the base64url HMAC-SHA256
of a purpose label, the username's digest (case-folded, as the limits count it) and the
expiry, under the key every replica shares (``shared.security.fingerprint.shared_mac``). Nothing
is stored. A process that has only its own key (Redis was away at its start) neither
sets nor accepts one, so no replica accepts what another would refuse.
"""

from __future__ import annotations

import base64
import time

from aiohttp import web

from shared.config.settings import Settings
from shared.security import crypto, fingerprint
from shared.web.login_throttle import username_digest

PURPOSE = "tessera device cookie"
# Unix times have 10 digits until the year 2286; anything longer is no value of ours.
_MAX_EXPIRY_DIGITS = 12


def cookie_name(settings: Settings) -> str:
    # As the session cookie's (RFC 6265bis §4.1.3.2): pinned to this host, path / and Secure.
    return "__Host-tessera_device" if settings.cookie_secure else "tessera_device"


def _value(username: str, expiry: int) -> str | None:
    mac = fingerprint.shared_mac(PURPOSE, f"{username_digest(username)}.{expiry}")
    if mac is None:
        return None
    return f"{expiry}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def set_cookie(response: web.StreamResponse, settings: Settings, username: str) -> None:
    """Make the browser known to ``username`` (who just signed in) for the known-address
    lifetime, unless this process has no shared key to sign with."""
    lifetime = settings.login_known_address_lifetime
    value = _value(username, int(time.time()) + lifetime)
    if value is None:
        return
    response.set_cookie(
        cookie_name(settings),
        value,
        max_age=lifetime,
        path="/",
        httponly=True,
        secure=settings.cookie_secure,
        samesite="Lax",
    )


def known(request: web.Request, settings: Settings, username: str) -> bool:
    """Whether the request carries an unexpired device cookie this Tessera set for
    ``username``."""
    value = request.cookies.get(cookie_name(settings), "")
    expiry, _, _ = value.partition(".")
    if not (value.isascii() and expiry.isdigit() and len(expiry) <= _MAX_EXPIRY_DIGITS):
        return False
    if int(expiry) <= time.time():
        return False
    expected = _value(username, int(expiry))
    return expected is not None and crypto.same(expected, value)
