"""Sign-in attempts: password guessing made slow, without letting anyone lock the owner out.

One path for the login page and the password grant (RFC 6749 §10.7 asks both to resist
brute force). Limits are per client address as ``shared.web.client_address.limit_subject``
counts it, in fixed windows counted in Redis (``shared.storage.rate_limits``), so every replica
shares them (README "Sign-in limits"):

- per (username, address), ``login_pair_rate`` (5 failures per 15 minutes): refused
  beyond, until the window ends; a successful sign-in starts the count again;
- per address, ``login_address_rate`` (30 failures per 15 minutes, whatever the
  usernames): refused beyond;
- per username, from every address together, ``login_username_rate`` (10 failures per 15
  minutes): beyond, it is slowed, not locked: one attempt every ``login_username_pace``
  seconds (60) is checked, the others refused until then.

A successful sign-in makes its address *known* to the username for
``login_known_address_lifetime`` (30 days; ``shared.storage.sign_in_addresses``): attempts
for that username from there skip the per-username pace and the per-address limit (the
per-pair limit still holds) and their password checks go first
(``shared.web.password_checks``). So guesses from elsewhere, however many and from however
many addresses, neither keep the owner out nor make them wait: OWASP's "device cookie"
scheme, keyed by the address so that it works for the password grant too. The sign-in page
adds the scheme's cookie (``services.authorize.devices``): an attempt carrying it is known
in the same way, from any address (``known_device``).

Every attempt is counted before its password is checked, so a burst sent at once cannot
outrun a limit, and given back when it succeeds, so the limits count failures. Refusals
answer at once and spend no argon2. Unknown usernames go through the same steps as known
ones (the password is checked against a dummy hash), so neither the answers nor their
timing tell which accounts exist. Usernames are keyed by a digest: people type their
password into the username field, and it must not land in Redis in clear.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from aiohttp import web

from shared.config.settings import Settings
from shared.domain.rates import Rate
from shared.security import crypto, fingerprint
from shared.storage import rate_limits, sign_in_addresses, users
from shared.storage.users import User
from shared.web.logs import add_to_line, security_event
from shared.web.password_checks import PasswordChecks

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient

# The rate_limits limits this module counts in (subjects: username digest, address).
PAIR = "login-pair"
ADDRESS = "login-address"
USERNAME = "login-username"
PACE = "login-pace"


class Reason(Enum):
    WRONG = "wrong username or password"
    PAIR = "too many failures for this username from this address"
    ADDRESS = "too many failures from this address"
    USERNAME = "too many failures for this username: one attempt at a time, slowly"
    BUSY = "every password check of this process is taken or waiting"


@dataclass(frozen=True, slots=True)
class Refused:
    reason: Reason
    # Seconds until an attempt may pass (Retry-After); 0 for a wrong password.
    retry_after: int = 0

    @property
    def limited(self) -> bool:
        """Refused without a password check (429): a limit, or no place for the check."""
        return self.reason is not Reason.WRONG


WRONG = Refused(Reason.WRONG)
# A place in the lines frees within a check or two: about a second.
BUSY = Refused(Reason.BUSY, retry_after=1)


def username_digest(username: str) -> str:
    # Case-folded: "Alice" and "alice" share their limits, so case is no way around them.
    return crypto.digest(username.casefold())


def _pair(name: str, address: str) -> str:
    return f"{name}:{address}"


async def sign_in(
    redis: RedisClient,
    settings: Settings,
    checks: PasswordChecks,
    *,
    username: str,
    password: str,
    address: str,
    known_device: bool = False,
) -> User | Refused:
    """The user when ``password`` is theirs and no limit refuses the attempt from
    ``address`` (``limit_subject`` of the request). ``known_device``: the attempt carries
    a device cookie of the username, so it counts as from a known address."""
    name = username_digest(username)
    found, pair_refused, user = await asyncio.gather(
        sign_in_addresses.is_known(redis, name, address),
        rate_limits.exhausted(redis, PAIR, settings.login_pair_rate, _pair(name, address)),
        users.get(redis, username),
    )
    if pair_refused is not None:
        return Refused(Reason.PAIR, pair_refused)
    known = known_device or found
    place = checks.reserve(priority=known)
    if place is None:
        return BUSY  # before anything is counted: for the limits, no attempt was made
    try:
        refused = await _count_attempt(redis, settings, name, address, known=known)
        if refused is not None:
            return refused
        ok = await place.verify(user.password_hash if user else None, password)
    finally:
        place.release()
    # A disabled person is refused as for a wrong password, after the same check: the
    # answer tells no one that the account exists.
    if not ok or user is None or not user.enabled:
        return WRONG
    await _succeeded(redis, settings, name, address, known=known)
    return user


async def _count_attempt(
    redis: RedisClient, settings: Settings, name: str, address: str, *, known: bool
) -> Refused | None:
    """Count the attempt in each limit that applies, the address's first, so an address
    already refused cannot spend the username's pace; the refusal, if any."""
    if not known:
        wait = await rate_limits.hit(redis, ADDRESS, settings.login_address_rate, address)
        if wait is not None:
            return Refused(Reason.ADDRESS, wait)
        if await rate_limits.hit(redis, USERNAME, settings.login_username_rate, name) is not None:
            # Past the threshold: slowed, not locked (one attempt per pace, from anyone).
            pace = Rate(1, settings.login_username_pace)
            wait = await rate_limits.hit(redis, PACE, pace, name)
            if wait is not None:
                return Refused(Reason.USERNAME, wait)
    pair, _ = await asyncio.gather(
        rate_limits.hit(redis, PAIR, settings.login_pair_rate, _pair(name, address)),
        sign_in_addresses.note_tried(redis, name, address, settings.login_pair_rate.seconds),
    )
    return None if pair is None else Refused(Reason.PAIR, pair)


async def _succeeded(
    redis: RedisClient, settings: Settings, name: str, address: str, *, known: bool
) -> None:
    """The owner, from ``address``: known there from now on, the pair's count starts
    again, and the attempt is given back to the per-address and per-username limits."""
    await asyncio.gather(
        sign_in_addresses.make_known(redis, name, address, settings.login_known_address_lifetime),
        rate_limits.reset(redis, PAIR, _pair(name, address)),
        *(
            ()
            if known
            else (
                rate_limits.give_back(redis, ADDRESS, address),
                rate_limits.give_back(redis, USERNAME, name),
            )
        ),
    )


def log_refusal(
    request: web.Request, refused: Refused, username: str, address: str, **fields: object
) -> None:
    """A security event for a refused sign-in, naming the username by its keyed
    fingerprint only (people type their password into the username field); a busy
    process's refusal is no event, only a note on the request's log line."""
    if refused is BUSY:
        add_to_line(request, refused="password checks busy")
        return
    security_event(
        "login_throttled" if refused.limited else "login_failed",
        reason=refused.reason.name.lower(),
        username=fingerprint.of(username),
        address=address,
        **fields,
    )


async def unlock(redis: RedisClient, username: str) -> None:
    """Clear the username's sign-in limits: its per-username count and pace, and its
    count from every address (``tessera user unlock``). Known addresses stay known."""
    name = username_digest(username)
    counts = [
        (PAIR, _pair(name, address)) for address in await sign_in_addresses.tried(redis, name)
    ]
    # One key at a time: on a Cluster they live in different slots.
    for limit, subject in (*counts, (USERNAME, name), (PACE, name)):
        await rate_limits.reset(redis, limit, subject)
    await sign_in_addresses.forget_tried(redis, name)


async def locked(redis: RedisClient, settings: Settings, username: str) -> bool:
    """Whether a sign-in limit holds the username now: its per-username count is used up
    (it is slowed), or its count from some address is (refused from there); what
    ``unlock`` clears."""
    name = username_digest(username)
    if await rate_limits.reached(redis, USERNAME, settings.login_username_rate, name):
        return True
    for address in await sign_in_addresses.tried(redis, name):
        pair = _pair(name, address)
        if await rate_limits.reached(redis, PAIR, settings.login_pair_rate, pair):
            return True
    return False
