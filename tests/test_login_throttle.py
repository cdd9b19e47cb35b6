"""Password guessing is slowed per username, and sign-in failures leave no username or
password in the logs."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import orjson
from redis.asyncio import Redis

from shared import crypto, fingerprint
from tests.oauth import (
    PASSWORD,
    Answer,
    Stack,
    code_request,
    csrf_token,
    fetch,
    make_setup,
    page_message,
    query_of,
    start_authorization,
    unique,
)

MAX_FAILURES = 10  # the default TESSERA_LOGIN_MAX_FAILURES
LOCKED = "Too many failed sign-ins for this username. Try again later."
FAILED = "The username or password is incorrect."
AUTHORIZE_LOG = Path(__file__).resolve().parent.parent / "test-artifacts/logs/authorize.log"


class LoginPage:
    def __init__(self, http: aiohttp.ClientSession, stack: Stack, interaction: str, csrf: str):
        self.http, self.stack, self.interaction, self.csrf = http, stack, interaction, csrf

    async def submit(self, username: str, password: str) -> Answer:
        return await fetch(
            self.http,
            "POST",
            f"{self.stack.authorize}/login",
            data={
                "interaction": self.interaction,
                "csrf_token": self.csrf,
                "username": username,
                "password": password,
            },
        )


async def open_login(
    http: aiohttp.ClientSession, stack: Stack, redis: Redis
) -> tuple[LoginPage, str]:
    setup = await make_setup(redis)
    started = await start_authorization(http, stack, code_request(setup.client, setup.scope))
    page = await fetch(http, "GET", f"{stack.authorize}{started.headers['Location']}")
    interaction = query_of(started.headers["Location"])["interaction"]
    return LoginPage(http, stack, interaction, csrf_token(page.text)), setup.user


async def test_a_username_is_refused_after_too_many_failures_even_with_the_right_password(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    login, user = await open_login(http, stack, redis)
    for _ in range(MAX_FAILURES):
        failed = await login.submit(user, "wrong password")
        assert page_message(failed.text) == FAILED

    locked = await login.submit(user, PASSWORD)

    assert locked.status == 200
    assert "Location" not in locked.headers
    assert page_message(locked.text) == LOCKED


async def test_an_unknown_username_is_throttled_alike(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """The same rule for every name, so the refusal tells nothing about which exist."""
    login, _ = await open_login(http, stack, redis)
    nobody = unique("nobody")
    answers = [await login.submit(nobody, "guess") for _ in range(MAX_FAILURES + 1)]

    assert [page_message(a.text) for a in answers] == [FAILED] * MAX_FAILURES + [LOCKED]


async def test_a_success_clears_the_count(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    login, user = await open_login(http, stack, redis)
    for _ in range(MAX_FAILURES - 1):
        await login.submit(user, "wrong password")

    signed_in = await login.submit(user, PASSWORD)
    assert signed_in.status == 303

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        other, _ = await open_login(browser, stack, redis)
        # The count starts from zero again: failing the limit minus one more times is no lock.
        for _ in range(MAX_FAILURES - 1):
            assert page_message((await other.submit(user, "wrong password")).text) == FAILED
        assert (await other.submit(user, PASSWORD)).status == 303


async def test_failed_sign_ins_log_neither_the_username_nor_the_password(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    login, _ = await open_login(http, stack, redis)
    # What a person types into the wrong field, by mistake.
    typed_as_username = unique("my-Secret-Passw0rd")
    typed_as_password = unique("another-Secret")

    answer = await login.submit(typed_as_username, typed_as_password)
    assert page_message(answer.text) == FAILED
    # One request later the failure is surely written (the log is line-buffered per record).
    await fetch(http, "GET", f"{stack.authorize}/healthz")

    log = AUTHORIZE_LOG.read_text()
    events = [orjson.loads(line) for line in log.splitlines() if '"login_failed"' in line]
    # The security event names the username only by its fingerprint, keyed with the key
    # the services share (an unkeyed digest of a password can be brute-forced).
    key = await fingerprint.shared_key(redis)
    assert {
        "event": "login_failed",
        "username": fingerprint.with_key(key, typed_as_username),
    }.items() <= (events[-1].items())
    assert crypto.digest(typed_as_username)[:12] not in log
    assert typed_as_username not in log
    assert typed_as_password not in log
