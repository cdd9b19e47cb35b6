"""Browser sessions: their types, what Redis holds of a signed-in session (under a digest
of its id, which only the browser knows), and the mark of a retired anonymous id.

The cookie, the CSRF check and what an anonymous session derives from its id are the
authorize service's (``services.authorize.sessions``, which says why each is as it is).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from typing import TYPE_CHECKING, Final

import orjson

from shared.domain import records
from shared.security import crypto
from shared.storage import keys

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient


@dataclass(frozen=True, slots=True)
class Session:
    """A browser's session: anonymous, unless it is a ``SignedIn``."""

    session_id: str
    csrf_token: str
    browser: str

    @property
    def signed_in(self) -> bool:
        # For the templates (logout.html); code asks ``who_is_signed_in``
        # (``services.authorize.sessions``), which narrows.
        return False


@dataclass(frozen=True, slots=True)
class SignedIn(Session):
    """A session someone signed in to: what only a signed-in person may do takes one, so
    the type checker refuses an anonymous session there."""

    username: str
    sub: str
    # The digest of the anonymous id the ``browser`` value was derived from.
    origin: str | None = None
    # When the person entered their password (OpenID Connect Core §2 auth_time), and the
    # session's public id for ID and logout tokens (Back-Channel Logout 1.0 §2.1 sid):
    # never the cookie's id, which only the browser may know. 0 and "" in a session
    # stored by a release before OpenID Connect.
    auth_time: int = 0
    sid: str = ""

    @property
    def signed_in(self) -> bool:
        return True


class Retired(Enum):
    """What Redis holds under an anonymous id that signed in (``retire``): no session."""

    RETIRED = "retired"  # never valid JSON, so never read as a signed-in session


RETIRED: Final = Retired.RETIRED


async def find(redis: RedisClient, session_id: str) -> SignedIn | Retired | None:
    """The signed-in session of ``session_id``, ``RETIRED``, or None when Redis holds
    nothing under it (never signed in, or its signed-in session ended)."""
    raw = await redis.get(keys.session(crypto.digest(session_id)))
    if raw is None:
        return None
    if raw == RETIRED.value:
        return RETIRED
    return records.from_json(SignedIn, raw, session_id=session_id)


async def save(redis: RedisClient, session: SignedIn, lifetime: int) -> None:
    """Store ``session`` for ``lifetime`` seconds, under its id's digest."""
    state = {name: value for name, value in asdict(session).items() if name != "session_id"}
    await redis.set(
        keys.session(crypto.digest(session.session_id)), orjson.dumps(state), ex=lifetime
    )


async def delete(redis: RedisClient, session: SignedIn) -> None:
    await redis.delete(keys.session(crypto.digest(session.session_id)))


async def retire(redis: RedisClient, origin: str, lifetime: int) -> None:
    """Retire the anonymous id whose digest is ``origin`` for ``lifetime`` seconds."""
    await redis.set(keys.session(origin), RETIRED.value, ex=lifetime)
