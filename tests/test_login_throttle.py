"""Sign-in limits (shared/login_throttle.py, README "Sign-in limits"), each tried as an
attacker would: guessing one person's password from one address, from one address over
many usernames, from many addresses at once, and from a whole IPv6 /64; none of it keeps
the owner out. Also ``tessera user unlock``, and that failures leave no username or
password in the logs.

The services here are behind a trusted proxy on loopback, so ``X-Forwarded-For`` says
which address each attempt comes from (shared/client_address.py).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest
from redis.asyncio import Redis

from shared import crypto, fingerprint, keys, login_throttle
from shared.local_processes import ProcessGroup
from tests.oauth import (
    ARTIFACTS,
    PASSWORD,
    Registered,
    Stack,
    code_request,
    csrf_token,
    fetch,
    make_client,
    make_scope,
    make_user,
    page_message,
    post_form,
    query_of,
    start_stack,
    unique,
)
from tests.test_cli import tessera

# The defaults (README "Sign-in limits") but for the pace, shortened so that a test can
# wait for it.
PAIR_LIMIT = 5
ADDRESS_LIMIT = 30
USERNAME_LIMIT = 10
WINDOW = 900
PACE = 8
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
            },
        )
    finally:
        group.stop()


def new_address() -> str:
    """An address no other attempt of the run comes from."""
    return "10." + ".".join(str(secrets.randbelow(256)) for _ in range(3))


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
    """The sign-in page, opened anew (in a new browser) for every attempt."""

    def __init__(self, stack: Stack, client: Registered, scope: str) -> None:
        self.stack, self.client, self.scope = stack, client, scope

    async def attempt(self, username: str, password: str, address: str) -> str:
        from_there = {"X-Forwarded-For": address}
        async with aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), headers=from_there
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


def assert_retry_after(headers: object) -> int:
    seconds = int(headers["Retry-After"])  # type: ignore[index]
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


async def paced(redis: Redis, username: str) -> None:
    """Wait until the username is past its threshold and a pace has begun: attempts
    from new addresses are refused from now until the pace ends, however long the
    checks of the attempts let through take."""
    pace = keys.rate_counter(login_throttle.PACE, login_throttle.username_digest(username))
    deadline = time.monotonic() + PACE
    while not await redis.exists(pace):
        assert time.monotonic() < deadline, "no pace began"
        await asyncio.sleep(0.01)


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
    grant: Door, account: Account, redis: Redis
) -> None:
    """Spraying guesses over many usernames from one address; the owner of an account
    who signed in from that address before (a shared office address) still gets in."""
    there = new_address()
    assert await grant.attempt(account.user, PASSWORD, there) == SIGNED_IN

    sprayed = [(unique("someone"), "123456", there) for _ in range(ADDRESS_LIMIT)]
    assert await attempts(grant, sprayed) == [WRONG] * ADDRESS_LIMIT
    assert await grant.attempt(unique("someone"), "123456", there) == LIMITED
    counted = await redis.get(keys.rate_counter(login_throttle.ADDRESS, there))
    assert int(counted) == ADDRESS_LIMIT + 1  # the owner's success was given back

    assert await grant.attempt(account.user, PASSWORD, there) == SIGNED_IN
    assert await grant.attempt(unique("someone"), "123456", new_address()) == WRONG


# --- per username, from many addresses ------------------------------------------------


async def test_guesses_from_many_addresses_slow_the_username_but_never_stop_its_owner(
    grant: Door, proxied: Stack, account: Account, redis: Redis
) -> None:
    """A botnet guessing one person's password: past the username's threshold one guess
    in each pace is checked, the rest refused at once; the owner, from where they signed
    in before, signs in as usual, and from a new address after the pace."""
    home = new_address()
    assert await grant.attempt(account.user, PASSWORD, home) == SIGNED_IN

    botnet = [(account.user, f"guess {i}", new_address()) for i in range(3 * USERNAME_LIMIT)]
    guessing = asyncio.ensure_future(attempts(grant, botnet))
    # The owner on a new phone, within the pace the guesses began: slowed too.
    await paced(redis, account.user)
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


# --- tessera user unlock --------------------------------------------------------------


async def test_tessera_user_unlock_clears_every_limit_of_the_username(
    grant: Door, proxied: Stack, account: Account, redis: Redis
) -> None:
    there = new_address()
    for _ in range(PAIR_LIMIT):
        assert await grant.attempt(account.user, "guess", there) == WRONG
    spread = [(account.user, "guess", new_address()) for _ in range(USERNAME_LIMIT + 3)]
    guessing = asyncio.ensure_future(attempts(grant, spread))
    await paced(redis, account.user)
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
    assert run.status == 0, run.stderr
    assert run.stdout == f"sign-in limits of {nobody} cleared (no user has that name)\n"


# --- logs -----------------------------------------------------------------------------


async def test_refused_sign_ins_log_neither_the_username_nor_the_password(
    grant: Door, proxied: Stack, account: Account, redis: Redis
) -> None:
    key = await fingerprint.shared_key(redis)
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
        # and the address.
        named = {"username": fingerprint.with_key(key, typed_as_username), "address": there}
        failed = {"event": "login_failed", "reason": "wrong", **named, **via}
        limited = {"event": "login_throttled", "reason": "pair", **named, **via}
        assert sum(failed.items() <= event.items() for event in events) == PAIR_LIMIT
        assert sum(limited.items() <= event.items() for event in events) == 1
