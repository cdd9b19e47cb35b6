"""Sign-in limits (shared/web/login_throttle.py, README "Sign-in limits"), each tried as an
attacker would: guessing one person's password from one address, from one address over
many usernames, from many addresses at once, and from a whole IPv6 /64; none of it keeps
the owner out, at home nor, with the browser's device cookie, on a new network. Also
``tessera user unlock``, and that failures leave no username or password in the logs.

The services here are behind a trusted proxy on loopback, so ``X-Forwarded-For`` says
which address each attempt comes from (shared/web/client_address.py).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from asyncio import Future
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from http.cookies import Morsel
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from redis.asyncio import Redis

from devtools.local_processes import ProcessGroup
from services.authorize import devices
from shared.security import crypto, fingerprint
from shared.storage import keys, log_fingerprint_key
from shared.web import login_throttle
from tests.command_line import tessera
from tests.flows import code_request
from tests.records import PASSWORD, Registered, make_client, make_scope, make_user, unique
from tests.replies import Answer, csrf_token, fetch, page_message, post_form, query_of
from tests.sign_in_limits import ADDRESS_LIMIT, PAIR_LIMIT, USERNAME_LIMIT, WINDOW, new_address
from tests.stack import ADMIN_TOKEN, ARTIFACTS, Stack, production_settings, start_stack

# The defaults (tests/sign_in_limits.py) but for the pace, shortened so that a test can
# wait for it.
PACE = 4
KNOWN_LIFETIME = 30 * 24 * 3600
DEVICE_COOKIE = "tessera_device"  # development mode (TESSERA_INSECURE_LOOPBACK=1)
FAILED = "The username or password is incorrect."
LIMITED_MESSAGE = "Too many sign-in attempts. Try again in "
PREFIX = "sign-in-limits-"
AUTHORIZE_LOG = ARTIFACTS / "logs" / f"{PREFIX}authorize.log"
TOKEN_LOG = ARTIFACTS / "logs" / f"{PREFIX}token.log"


@pytest.fixture(scope="module")
def proxied(stack: Stack) -> Iterator[Stack]:
    """The services, on the session's Redis, behind a trusted proxy on loopback."""
    group = ProcessGroup()
    try:
        yield start_stack(
            group,
            stack.redis_url,
            stack.signing_keys or Path(),
            log_prefix=PREFIX,
            extra_env={
                "TESSERA_TRUSTED_PROXIES": "127.0.0.1",
                "TESSERA_LOGIN_USERNAME_PACE": str(PACE),
                # Bursts of attempts here are about the limits, not the lines in front of
                # the password checks (tests/test_password_checks.py): room for all.
                "TESSERA_PASSWORD_CHECK_QUEUE": "100",
                # `tessera user unlock` asks this stack's admin API.
                "TESSERA_ADMIN_TOKEN": ADMIN_TOKEN,
            },
        )
    finally:
        group.stop()


SIGNED_IN, WRONG, LIMITED = "signed in", "wrong", "limited"


class Door:
    """A way to sign in: ``attempt`` answers signed in, wrong, or limited."""

    async def attempt(self, username: str, password: str, address: str) -> str:
        raise NotImplementedError


class PasswordGrant(Door):
    def __init__(
        self, http: aiohttp.ClientSession, stack: Stack, client: Registered, scope: str
    ) -> None:
        self.http, self.stack, self.client, self.scope = http, stack, client, scope

    async def attempt(self, username: str, password: str, address: str) -> str:
        assert self.client.secret
        reply = await post_form(
            self.http,
            f"{self.stack.token}/token",
            {
                "grant_type": "password",
                "username": username,
                "password": password,
                "scope": self.scope,
                "client_id": self.client.client_id,
                "client_secret": self.client.secret,
            },
            {"X-Forwarded-For": address},
        )
        if reply.status == 200:
            assert "access_token" in reply.body
            return SIGNED_IN
        if reply.status == 400:
            assert reply.body["error"] == "invalid_grant"
            return WRONG
        # RFC 6585 §4, in RFC 6749 §5.2's JSON.
        assert reply.status == 429, reply
        assert reply.body["error"] == "temporarily_unavailable"
        assert_retry_after(reply.headers)
        return LIMITED


class LoginPage(Door):
    """The sign-in page, opened anew (in a new browser) for every attempt; the browser
    holds ``device`` as its device cookie when it is set (its session long ended)."""

    def __init__(
        self, stack: Stack, client: Registered, scope: str, device: str | None = None
    ) -> None:
        self.stack, self.client, self.scope = stack, client, scope
        self.device = device
        self.last: Answer | None = None

    def device_cookie(self) -> Morsel[str]:
        """The device cookie the last attempt's answer set."""
        assert self.last is not None
        return self.last.cookies()[DEVICE_COOKIE]

    async def attempt(self, username: str, password: str, address: str) -> str:
        from_there = {"X-Forwarded-For": address}
        held = {DEVICE_COOKIE: self.device} if self.device is not None else None
        async with aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), cookies=held, headers=from_there
        ) as browser:
            started = await fetch(
                browser,
                "GET",
                f"{self.stack.authorize}/authorize",
                params=code_request(self.client, self.scope),
            )
            page = await fetch(browser, "GET", f"{self.stack.authorize}{started.location}")
            answer = await fetch(
                browser,
                "POST",
                f"{self.stack.authorize}/login",
                data={
                    "interaction": query_of(started.location)["interaction"],
                    "csrf_token": csrf_token(page.text),
                    "username": username,
                    "password": password,
                },
            )
        self.last = answer
        if answer.status == 303:
            assert answer.location.startswith("/consent?")
            return SIGNED_IN
        assert "Location" not in answer.headers
        if answer.status == 200:
            assert page_message(answer.text) == FAILED
            return WRONG
        # The page again, to try from, saying when.
        assert answer.status == 429, answer.status
        assert page_message(answer.text).startswith(LIMITED_MESSAGE)
        assert_retry_after(answer.headers)
        return LIMITED


def assert_retry_after(headers: Mapping[str, str]) -> int:
    seconds = int(headers["Retry-After"])
    assert 1 <= seconds <= WINDOW
    return seconds


@dataclass(frozen=True)
class Account:
    user: str
    client: Registered
    scope: str


@pytest.fixture
async def account(redis: Redis) -> Account:
    scope = await make_scope(redis)
    user = await make_user(redis)
    client = await make_client(redis, [scope], grants=["authorization_code", "password"])
    return Account(user, client, scope)


@pytest.fixture
async def grant(proxied: Stack, account: Account) -> AsyncIterator[Door]:
    async with aiohttp.ClientSession() as http:
        yield PasswordGrant(http, proxied, account.client, account.scope)


@pytest.fixture(params=["password grant", "login page"])
async def door(
    request: pytest.FixtureRequest, proxied: Stack, account: Account
) -> AsyncIterator[Door]:
    async with aiohttp.ClientSession() as http:
        if request.param == "login page":
            yield LoginPage(proxied, account.client, account.scope)
        else:
            yield PasswordGrant(http, proxied, account.client, account.scope)


async def attempts(door: Door, tries: list[tuple[str, str, str]]) -> list[str]:
    """Each (username, password, address) tried, all at once."""
    return list(await asyncio.gather(*(door.attempt(*one) for one in tries)))


async def until_paced(door: Door, guesses: list[tuple[str, str, str]]) -> Future[list[str]]:
    """Send ``guesses`` at one username, each from an address of its own, all at once, and
    return as soon as one is refused: only the username's pace refuses those, so it has
    begun, and attempts from new addresses are refused from now until it ends, however
    long the checks of the guesses let through take. Returns the guesses' answers to come."""
    sent = [asyncio.ensure_future(door.attempt(*guess)) for guess in guesses]
    waiting: set[Future[str]] = set(sent)
    while waiting:
        answered, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if any(answer.result() == LIMITED for answer in answered):
            return asyncio.gather(*sent)
    raise AssertionError("no pace began")


# --- per (username, address) -----------------------------------------------------------


async def test_five_failures_from_one_address_refuse_that_address_only(
    door: Door, account: Account
) -> None:
    there, elsewhere = new_address(), new_address()
    guesses = await attempts(door, [(account.user, f"guess {i}", there) for i in range(PAIR_LIMIT)])
    assert guesses == [WRONG] * PAIR_LIMIT

    # The right password too, from there, until the window ends, without a check.
    assert await door.attempt(account.user, PASSWORD, there) == LIMITED
    # The owner elsewhere is not concerned.
    assert await door.attempt(account.user, PASSWORD, elsewhere) == SIGNED_IN


async def test_a_success_starts_the_count_of_its_address_again(
    grant: Door, account: Account
) -> None:
    there = new_address()
    for i in range(PAIR_LIMIT - 1):
        assert await grant.attempt(account.user, f"guess {i}", there) == WRONG
    assert await grant.attempt(account.user, PASSWORD, there) == SIGNED_IN

    for i in range(PAIR_LIMIT):
        assert await grant.attempt(account.user, f"typo {i}", there) == WRONG
    assert await grant.attempt(account.user, PASSWORD, there) == LIMITED


async def test_an_ipv6_client_counts_as_its_whole_64(grant: Door, account: Account) -> None:
    """An attacker holding a /64 cannot take five new guesses from each of its addresses."""
    prefix = f"2001:db8:{secrets.randbelow(0xFFFF):x}:{secrets.randbelow(0xFFFF):x}"
    hosts = [f"{prefix}::{i + 1:x}" for i in range(PAIR_LIMIT + 1)]
    answers = [await grant.attempt(account.user, "guess", host) for host in hosts]
    assert answers == [WRONG] * PAIR_LIMIT + [LIMITED]


# --- per address ----------------------------------------------------------------------


async def test_thirty_failures_from_one_address_refuse_it_but_not_the_owner_known_there(
    grant: Door, account: Account
) -> None:
    """Spraying guesses over many usernames from one address; the owner of an account
    who signed in from that address before (a shared office address) still gets in."""
    there = new_address()
    assert await grant.attempt(account.user, PASSWORD, there) == SIGNED_IN

    sprayed = [(unique("someone"), "123456", there) for _ in range(ADDRESS_LIMIT)]
    # All of the limit's failures: the owner's success was given back, not counted.
    assert await attempts(grant, sprayed) == [WRONG] * ADDRESS_LIMIT
    assert await grant.attempt(unique("someone"), "123456", there) == LIMITED

    assert await grant.attempt(account.user, PASSWORD, there) == SIGNED_IN
    assert await grant.attempt(unique("someone"), "123456", new_address()) == WRONG


# --- per username, from many addresses ------------------------------------------------


async def test_guesses_from_many_addresses_slow_the_username_but_never_stop_its_owner(
    grant: Door, proxied: Stack, account: Account
) -> None:
    """A botnet guessing one person's password: past the username's threshold one guess
    in each pace is checked, the rest refused at once; the owner, from where they signed
    in before, signs in as usual, and from a new address after the pace."""
    home = new_address()
    assert await grant.attempt(account.user, PASSWORD, home) == SIGNED_IN

    botnet = [(account.user, f"guess {i}", new_address()) for i in range(3 * USERNAME_LIMIT)]
    guessing = await until_paced(grant, botnet)
    # The owner on a new phone, within the pace the guesses began: slowed too.
    phone = new_address()
    assert await grant.attempt(account.user, PASSWORD, phone) == LIMITED
    # Counted before checking: the threshold's worth and one paced guess, however sent.
    checked = USERNAME_LIMIT + 1
    answers = await guessing
    assert sorted(answers) == sorted([WRONG] * checked + [LIMITED] * (len(botnet) - checked))

    # The owner at home: neither refused nor slowed, on either door.
    assert await grant.attempt(account.user, PASSWORD, home) == SIGNED_IN
    page = LoginPage(proxied, account.client, account.scope)
    assert await page.attempt(account.user, PASSWORD, home) == SIGNED_IN
    # A typo at home is just a typo.
    assert await grant.attempt(account.user, "typo", home) == WRONG

    # Slowed, not locked: the next pace lets the phone through.
    await asyncio.sleep(PACE + 0.5)
    assert await grant.attempt(account.user, PASSWORD, phone) == SIGNED_IN


async def test_an_unknown_username_is_limited_exactly_like_a_real_one(
    door: Door, account: Account
) -> None:
    """The limits tell nothing about which usernames exist."""
    answers = {}
    for username in (account.user, unique("nobody")):
        there = new_address()
        pair = [await door.attempt(username, "guess", there) for _ in range(PAIR_LIMIT + 1)]
        spread = await attempts(
            door, [(username, "guess", new_address()) for _ in range(USERNAME_LIMIT)]
        )
        answers[username] = (pair, sorted(spread))
    mine, nobodys = answers.values()
    assert mine == nobodys
    assert mine[0] == [WRONG] * PAIR_LIMIT + [LIMITED]


# --- the owner's browser, wherever it is (device cookie) ------------------------------


async def hold_the_pace(grant: Door, redis: Redis, username: str) -> None:
    """Push the username past its threshold from new addresses and take its pace, as an
    attacker who reads Retry-After and takes every next pace the moment it begins."""
    guesses = [(username, f"guess {i}", new_address()) for i in range(USERNAME_LIMIT + 1)]
    assert await attempts(grant, guesses) == [WRONG] * len(guesses)  # the last one paced
    pace = keys.rate_counter(login_throttle.PACE, login_throttle.username_digest(username))
    # That attacker holds every pace: as if this one lasted the window (and the test need
    # not race it).
    assert await redis.expire(pace, WINDOW)


async def test_the_owners_browser_signs_in_from_a_new_address_while_the_pace_is_held(
    grant: Door, proxied: Stack, account: Account, redis: Redis
) -> None:
    """The hole a known address leaves: the owner on a new network (a phone, a hotel)
    would wait for a pace the attacker always takes first. Their browser signed in
    before, so its device cookie makes the attempt known."""
    owners = LoginPage(proxied, account.client, account.scope)
    assert await owners.attempt(account.user, PASSWORD, new_address()) == SIGNED_IN
    owners.device = owners.device_cookie().value
    await hold_the_pace(grant, redis, account.user)

    assert await owners.attempt(account.user, PASSWORD, new_address()) == SIGNED_IN
    # Known, not trusted: a wrong password is still checked and wrong.
    assert await owners.attempt(account.user, "typo", new_address()) == WRONG
    # The same browser with its cookies cleared waits like anyone, on either door.
    cleared = LoginPage(proxied, account.client, account.scope)
    assert await cleared.attempt(account.user, PASSWORD, new_address()) == LIMITED
    assert await grant.attempt(account.user, PASSWORD, new_address()) == LIMITED


async def test_a_device_cookie_of_another_user_tampered_moved_or_expired_is_no_exemption(
    grant: Door,
    proxied: Stack,
    account: Account,
    redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = await make_user(redis)
    others = LoginPage(proxied, account.client, account.scope)
    assert await others.attempt(other, PASSWORD, new_address()) == SIGNED_IN
    owners = LoginPage(proxied, account.client, account.scope)
    assert await owners.attempt(account.user, PASSWORD, new_address()) == SIGNED_IN
    mine = owners.device_cookie().value
    expiry, mac = mine.split(".")
    # Signed as the services sign, with the key they share: an hour past its end, and
    # (to show the signing is right) one that is not.
    shared = fingerprint._Key((await log_fingerprint_key.shared_key(redis)), fingerprint.PREFIX)
    monkeypatch.setattr(fingerprint, "_key", shared)
    expired = devices._value(account.user, int(time.time()) - 3600)
    signed_here = devices._value(account.user, int(time.time()) + 3600)
    await hold_the_pace(grant, redis, account.user)

    refused = {
        "another user's": others.device_cookie().value,
        "tampered": f"{expiry}.{'B' if mac[0] == 'A' else 'A'}{mac[1:]}",
        "moved on a year": f"{int(expiry) + 365 * 24 * 3600}.{mac}",
        "expired": expired,
        "without its MAC": expiry,
    }
    for kind, cookie in refused.items():
        page = LoginPage(proxied, account.client, account.scope, device=cookie)
        assert await page.attempt(account.user, PASSWORD, new_address()) == LIMITED, kind
    for cookie in (mine, signed_here):
        page = LoginPage(proxied, account.client, account.scope, device=cookie)
        assert await page.attempt(account.user, PASSWORD, new_address()) == SIGNED_IN


async def test_the_device_cookie_is_http_only_lax_host_wide_and_lasts_as_a_known_address(
    proxied: Stack, account: Account
) -> None:
    page = LoginPage(proxied, account.client, account.scope)
    assert await page.attempt(account.user, PASSWORD, new_address()) == SIGNED_IN

    cookie = page.device_cookie()
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["domain"] == ""  # host-only
    assert cookie["secure"] == ""  # development mode; __Host- and Secure: test_login_and_consent
    assert cookie["max-age"] == str(KNOWN_LIFETIME)
    expiry, mac = cookie.value.split(".")
    assert abs(int(expiry) - (time.time() + KNOWN_LIFETIME)) < 60
    assert len(mac) == 43  # HMAC-SHA256, base64url

    # A wrong password sets none.
    assert await page.attempt(account.user, "typo", new_address()) == WRONG
    assert page.last is not None
    assert DEVICE_COOKIE not in page.last.cookies()


async def test_a_process_with_only_its_own_key_neither_sets_nor_accepts_device_cookies(
    stack: Stack, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis away at its start: a cookie it set would be refused by every other replica,
    and one they set, accepted by it alone if it trusted its own key."""
    settings = production_settings(stack.redis_url)
    shared = fingerprint._Key((await log_fingerprint_key.shared_key(redis)), fingerprint.PREFIX)
    monkeypatch.setattr(fingerprint, "_key", shared)
    issued = web.Response()
    devices.set_cookie(issued, settings, "alice")
    cookie = issued.cookies[devices.cookie_name(settings)]
    sent = make_mocked_request("POST", "/login", headers={"Cookie": f"{cookie.key}={cookie.value}"})
    assert devices.known(sent, settings, "alice")
    assert devices.known(sent, settings, "ALICE")  # usernames are case-folded
    assert not devices.known(sent, settings, "bob")

    local = fingerprint._Key(secrets.token_bytes(32), fingerprint.LOCAL_PREFIX)
    monkeypatch.setattr(fingerprint, "_key", local)
    assert not devices.known(sent, settings, "alice")
    not_issued = web.Response()
    devices.set_cookie(not_issued, settings, "alice")
    assert not not_issued.cookies


# --- tessera user unlock --------------------------------------------------------------


async def test_tessera_user_unlock_clears_every_limit_of_the_username(
    grant: Door, proxied: Stack, account: Account, redis: Redis
) -> None:
    there = new_address()
    for _ in range(PAIR_LIMIT):
        assert await grant.attempt(account.user, "guess", there) == WRONG
    spread = [(account.user, "guess", new_address()) for _ in range(USERNAME_LIMIT + 3)]
    guessing = await until_paced(grant, spread)
    assert await grant.attempt(account.user, PASSWORD, new_address()) == LIMITED
    await guessing
    assert await grant.attempt(account.user, PASSWORD, there) == LIMITED
    # Someone else limited at the same address stays so.
    other = await make_user(redis)
    for _ in range(PAIR_LIMIT + 1):
        await grant.attempt(other, "guess", there)

    run = await tessera(proxied, "user", "unlock", account.user)

    assert run.status == 0, run.stderr
    assert run.stdout == f"sign-in limits of {account.user} cleared\n"
    # Storage check: no counter of the username is left, from any address it failed from,
    # nor their list; the attempts below show only the limits they meet again.
    name = login_throttle.username_digest(account.user)
    left = [key async for key in redis.scan_iter(match=f"tessera:rate:login-*{name}*")]
    assert left == []
    assert not await redis.exists(keys.login_addresses(name))
    # From the address that had failed five times, and from anywhere, at full speed.
    assert await grant.attempt(account.user, PASSWORD, there) == SIGNED_IN
    assert await grant.attempt(account.user, "guess", new_address()) == WRONG
    assert await grant.attempt(account.user, PASSWORD, new_address()) == SIGNED_IN
    assert await grant.attempt(other, PASSWORD, there) == LIMITED


async def test_tessera_user_unlock_of_a_name_nobody_has_says_so(proxied: Stack) -> None:
    nobody = unique("nobody")
    run = await tessera(proxied, "user", "unlock", nobody)
    assert (run.status, run.stdout) == (1, "")
    assert run.stderr == f"tessera: error: no user {nobody!r}\n"


# --- logs -----------------------------------------------------------------------------


async def test_refused_sign_ins_log_neither_the_username_nor_the_password(
    grant: Door, proxied: Stack, account: Account
) -> None:
    page = LoginPage(proxied, account.client, account.scope)
    for log, door, via in (
        (TOKEN_LOG, grant, {"via": "password_grant"}),
        (AUTHORIZE_LOG, page, {"client_id": account.client.client_id}),
    ):
        # What a person types into the wrong field, by mistake.
        typed_as_username = unique("my-Secret-Passw0rd")
        typed_as_password = unique("another-Secret")
        there = new_address()
        for _ in range(PAIR_LIMIT + 1):
            await door.attempt(typed_as_username, typed_as_password, there)
        # One request later the lines are surely written (the log is line-buffered).
        async with aiohttp.ClientSession() as http:
            await fetch(http, "GET", f"{proxied.authorize}/healthz")
            await fetch(http, "GET", f"{proxied.token}/healthz")

        text = log.read_text()
        assert typed_as_username not in text
        assert typed_as_password not in text
        events = [orjson.loads(line) for line in text.splitlines() if there in line]
        assert crypto.digest(typed_as_username)[:12] not in text
        # The security events name the username only by its fingerprint, keyed with the
        # key the services share (an unkeyed digest of a password can be brute-forced),
        # and the address: what ``tessera log fingerprint`` finds the value by.
        found = await tessera(proxied, "log", "fingerprint", stdin=typed_as_username)
        assert found.status == 0, found.stderr
        named = {"username": found.stdout.strip(), "address": there}
        failed = {"event": "login_failed", "reason": "wrong", **named, **via}
        limited = {"event": "login_throttled", "reason": "pair", **named, **via}
        assert sum(failed.items() <= event.items() for event in events) == PAIR_LIMIT
        assert sum(limited.items() <= event.items() for event in events) == 1
