"""Browser sessions: an opaque cookie; a signed-in session's state lives in Redis under
the id's digest.

Every session carries a CSRF token that the login, approval and logout forms must echo,
and a ``browser`` value, never sent to the browser, that pending interactions are bound
to. Signing in replaces the session id and the CSRF token (no session fixation) and keeps
the ``browser`` value, so requests pending in other tabs carry on.

An anonymous session is its cookie alone: its CSRF token and ``browser`` value are
hashes of the id, so a browser that has not signed in costs Redis nothing (README,
"Rate limits and memory"). Only the browser knows the id, so a cross-site attacker can
derive neither (a double-submit cookie). Nothing is signed: any well-formed id is an
anonymous session, and whoever can plant a cookie knows its CSRF token. The __Host-
prefix (outside development mode) keeps a sibling site from planting one; an id planted
anyway is worth nothing once the person signs in (``_retire``).

The session types, and what Redis holds of them, are ``shared.storage.browser_sessions``.
"""

from __future__ import annotations

import time

from aiohttp import web

from shared.config.settings import Settings
from shared.domain.oauth_errors import OAuthError
from shared.security import crypto
from shared.storage import browser_sessions
from shared.storage.browser_sessions import Session, SignedIn
from shared.storage.users import User
from shared.web.app_keys import REDIS, SETTINGS

_ID_BYTES = 32
_ID_LENGTH = len(crypto.random_token(_ID_BYTES))


def who_is_signed_in(session: Session | None) -> SignedIn | None:
    """The signed-in session, or None for an anonymous one or none at all: the one
    question the pages ask before anything only a signed-in person may do."""
    return session if isinstance(session, SignedIn) else None


def cookie_name(settings: Settings) -> str:
    # The __Host- prefix pins the cookie to this host, path / and Secure (RFC 6265bis §4.1.3.2).
    return "__Host-tessera_session" if settings.cookie_secure else "tessera_session"


def _well_formed(session_id: str) -> bool:
    # What random_token(32) makes: anything else (huge, odd bytes) is no session of ours.
    return len(session_id) == _ID_LENGTH and session_id.isascii() and session_id.isprintable()


def anonymous(session_id: str) -> Session:
    """The anonymous session of a cookie id."""
    return Session(
        session_id=session_id,
        csrf_token=crypto.digest(f"csrf:{session_id}"),
        browser=crypto.digest(f"browser:{session_id}"),
    )


def lifetime(settings: Settings, session: Session) -> int:
    """Anonymous sessions exist only to carry an interaction and its CSRF token, so they
    live as long as an interaction; signed-in ones the configured session lifetime."""
    if who_is_signed_in(session) is None:
        return settings.interaction_lifetime
    return settings.session_lifetime


async def load(request: web.Request) -> Session | None:
    """The browser's session: signed in when Redis holds it, else anonymous; None when
    the browser sent no (well-formed) session cookie."""
    session_id = request.cookies.get(cookie_name(request.app[SETTINGS]), "")
    if not _well_formed(session_id):
        return None
    found = await browser_sessions.find(request.app[REDIS], session_id)
    if found is browser_sessions.RETIRED:
        return None
    # None: never signed in, or its signed-in session ended; anonymous either way.
    return anonymous(session_id) if found is None else found


def start() -> Session:
    """A new anonymous session; the caller sets its cookie. Nothing is stored."""
    return anonymous(crypto.random_token(_ID_BYTES))


async def sign_in(request: web.Request, current: Session, user: User) -> SignedIn:
    """Replace the current session (anonymous, or signed in before prompt=login) by a
    signed-in one for the same browser."""
    before = who_is_signed_in(current)
    if before is not None:
        await end(request, before)
        origin = before.origin
    else:
        origin = crypto.digest(current.session_id)
    if origin is not None:
        await _retire(request, origin)
    session = SignedIn(
        session_id=crypto.random_token(_ID_BYTES),
        csrf_token=crypto.random_token(32),
        browser=current.browser,
        username=user.username,
        sub=user.sub,
        origin=origin,
        auth_time=int(time.time()),
        # The same person signing in again (prompt=login, max_age) goes on with the same
        # session, as the relying parties know it; anyone else starts a new one.
        sid=before.sid
        if before is not None and before.sid and before.sub == user.sub
        else crypto.random_token(16),
    )
    settings = request.app[SETTINGS]
    await browser_sessions.save(request.app[REDIS], session, lifetime(settings, session))
    return session


async def load_or_start(request: web.Request) -> tuple[Session, bool]:
    """The current session, or a new anonymous one; the flag says it is new."""
    session = await load(request)
    if session is not None:
        return session, False
    return start(), True


async def end(request: web.Request, session: SignedIn) -> None:
    """Sign out: the id becomes an anonymous session's, of a browser value nothing uses."""
    await browser_sessions.delete(request.app[REDIS], session)


async def _retire(request: web.Request, origin: str) -> None:
    """Signing in keeps the anonymous session's ``browser`` value, which its id derives:
    whoever kept the old id (planted it, even) must not derive it any more, for as long
    as the new signed-in session can live (renewed by every sign-in that keeps it)."""
    settings = request.app[SETTINGS]
    await browser_sessions.retire(request.app[REDIS], origin, settings.session_lifetime)


def set_cookie(response: web.StreamResponse, settings: Settings, session: Session) -> None:
    response.set_cookie(
        cookie_name(settings),
        session.session_id,
        max_age=lifetime(settings, session),
        path="/",
        httponly=True,
        secure=settings.cookie_secure,
        samesite="Lax",
    )


def clear_cookie(response: web.StreamResponse, settings: Settings) -> None:
    response.del_cookie(
        cookie_name(settings), path="/", secure=settings.cookie_secure, samesite="Lax"
    )


async def load_for_form(request: web.Request, csrf_token: str | None) -> Session:
    """The session a posted form belongs to: the browser's session, when the form echoes
    its CSRF token; else the form is refused, whoever is signed in."""
    session = await load(request)
    if session is None or csrf_token is None or not crypto.same(session.csrf_token, csrf_token):
        raise OAuthError(
            "invalid_request",
            "The form has expired. Go back to the application and start again.",
            status=403,
            cause="missing or wrong CSRF token",
        )
    return session
