"""Browser sessions: an opaque cookie whose state lives in Redis under the id's digest.

Every session carries a CSRF token that the login, approval and logout forms must echo,
and a ``browser`` value, never sent to the browser, that pending interactions are bound
to. Signing in replaces the session id and the CSRF token (no session fixation) and keeps
the ``browser`` value, so requests pending in other tabs carry on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from shared import crypto, keys, records
from shared.app_keys import REDIS, SETTINGS
from shared.settings import Settings
from shared.users import User

if TYPE_CHECKING:
    from shared.redis_store import RedisClient


@dataclass(slots=True)
class Session:
    session_id: str
    csrf_token: str
    browser: str
    username: str | None = None
    sub: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.username is not None


def cookie_name(settings: Settings) -> str:
    # The __Host- prefix pins the cookie to this host, path / and Secure (RFC 6265bis §4.1.3.2).
    return "__Host-tessera_session" if settings.cookie_secure else "tessera_session"


def lifetime(settings: Settings, session: Session) -> int:
    """Anonymous sessions exist only to carry an interaction and its CSRF token, so they
    live as long as an interaction; signed-in ones the configured session lifetime."""
    return settings.session_lifetime if session.signed_in else settings.interaction_lifetime


async def load(request: web.Request) -> Session | None:
    session_id = request.cookies.get(cookie_name(request.app[SETTINGS]))
    if not session_id:
        return None
    raw = await request.app[REDIS].get(keys.session(crypto.digest(session_id)))
    if raw is None:
        return None
    return records.from_json(Session, raw, session_id=session_id)


async def _store(redis: RedisClient, settings: Settings, session: Session) -> None:
    # Stored under the id's digest; the id itself stays with the browser.
    state = {name: value for name, value in asdict(session).items() if name != "session_id"}
    await redis.set(
        keys.session(crypto.digest(session.session_id)),
        orjson.dumps(state),
        ex=lifetime(settings, session),
    )


async def start(request: web.Request) -> Session:
    """A new anonymous session; the caller sets its cookie."""
    session = Session(
        session_id=crypto.random_token(32),
        csrf_token=crypto.random_token(32),
        browser=crypto.random_token(16),
    )
    await _store(request.app[REDIS], request.app[SETTINGS], session)
    return session


async def sign_in(request: web.Request, anonymous: Session, user: User) -> Session:
    """Replace the anonymous session by a signed-in one for the same browser."""
    await end(request, anonymous)
    session = Session(
        session_id=crypto.random_token(32),
        csrf_token=crypto.random_token(32),
        browser=anonymous.browser,
        username=user.username,
        sub=user.sub,
    )
    await _store(request.app[REDIS], request.app[SETTINGS], session)
    return session


async def load_or_start(request: web.Request) -> tuple[Session, bool]:
    """The current session, or a new anonymous one; the flag says it is new."""
    session = await load(request)
    if session is not None:
        return session, False
    return await start(request), True


async def end(request: web.Request, session: Session) -> None:
    await request.app[REDIS].delete(keys.session(crypto.digest(session.session_id)))


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


def csrf_matches(session: Session | None, submitted: str | None) -> bool:
    return (
        session is not None and submitted is not None and crypto.same(session.csrf_token, submitted)
    )
