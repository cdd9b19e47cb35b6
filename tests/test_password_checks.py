"""The lines in front of the argon2 threads (shared/web/password_checks.py): bounded, the
owner's line first; and through the services, a full line answered 429 at once (JSON for
the password grant, the sign-in page for the browser) and a refused attempt answered
without a password check."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from redis.asyncio import Redis

from services.authorize.app import create_app as authorize_app
from services.token.app import create_app as token_app
from shared.security import crypto
from shared.web.password_checks import PASSWORD_CHECKS, PasswordChecks, Place
from tests.flows import code_request
from tests.records import PASSWORD, make_client, make_scope, make_user, unique
from tests.replies import csrf_token, fetch, page_message, query_of
from tests.sign_in_limits import PAIR_LIMIT, USERNAME_LIMIT, new_address
from tests.stack import FORWARDED_HTTPS, Stack, production_settings

HASH = crypto.hash_password(PASSWORD)
# An answer that needs no password check does not wait for one: well under this.
PROMPTLY = 5.0
BUSY_PAGE = "Many people are signing in right now. Try again in a moment."


def taken(place: Place | None) -> Place:
    assert place is not None, "refused a place while there was room"
    return place


async def test_checks_tell_right_from_wrong_and_a_missing_user() -> None:
    checks = PasswordChecks(threads=2, queue=2)
    try:
        assert await taken(checks.reserve(priority=False)).verify(HASH, PASSWORD) is True
        assert await taken(checks.reserve(priority=False)).verify(HASH, "wrong") is False
        # A username nobody has is checked against the dummy hash, as long, and fails.
        assert await taken(checks.reserve(priority=True)).verify(None, PASSWORD) is False
    finally:
        checks.close()


async def test_each_line_is_bounded_and_the_owners_line_goes_first() -> None:
    checks = PasswordChecks(threads=1, queue=2)
    try:
        holder = taken(checks.reserve(priority=False))  # the only thread
        others = [taken(checks.reserve(priority=False)) for _ in range(2)]
        assert checks.reserve(priority=False) is None  # full: refused at once
        owner = taken(checks.reserve(priority=True))  # a line of its own
        assert (checks.waiting(priority=True), checks.waiting(priority=False)) == (1, 2)

        finished: list[str] = []

        async def check(place: Place, who: str) -> None:
            await place.verify(HASH, PASSWORD)
            finished.append(who)

        tasks = [
            asyncio.create_task(check(others[0], "first guess")),
            asyncio.create_task(check(others[1], "second guess")),
            asyncio.create_task(check(owner, "owner")),
        ]
        await asyncio.sleep(0)
        holder.release()
        await asyncio.gather(*tasks)

        # The owner came last and went first; the others in their order.
        assert finished == ["owner", "first guess", "second guess"]
        assert (checks.waiting(priority=True), checks.waiting(priority=False)) == (0, 0)
    finally:
        checks.close()


async def test_one_thread_is_kept_for_the_owners_and_guesses_run_niced() -> None:
    """Guesses may hold every thread but one, so an owner never waits for one of them;
    and they run on threads of lower CPU priority, so under a flood the owner's check
    and the event loop get the CPU first."""
    checks = PasswordChecks(threads=2, queue=4)
    try:
        guess = taken(checks.reserve(priority=False))
        second = taken(checks.reserve(priority=False))
        assert checks.waiting(priority=False) == 1  # a thread is idle, but not for it
        owner = taken(checks.reserve(priority=True))
        assert checks.waiting(priority=True) == 0  # the kept thread, at once
        assert await owner.verify(HASH, PASSWORD) is True
        assert checks.waiting(priority=False) == 1  # still not for guesses
        assert await guess.verify(HASH, "guess") is False
        assert await second.verify(HASH, "guess") is False

        base = os.getpriority(os.PRIO_PROCESS, 0)
        niceness = {
            (thread.name.rsplit("_", 1)[0], os.getpriority(os.PRIO_PROCESS, thread.native_id or 0))
            for thread in threading.enumerate()
            if thread.name.startswith("argon2")
        }
        assert niceness == {("argon2", base + 10), ("argon2-owners", base)}
    finally:
        checks.close()


async def test_a_place_given_up_or_cancelled_leaves_its_line() -> None:
    checks = PasswordChecks(threads=1, queue=1)
    try:
        holder = taken(checks.reserve(priority=False))
        given_up = taken(checks.reserve(priority=False))
        given_up.release()  # a limit refused the attempt: no check
        waiting = taken(checks.reserve(priority=False))  # its room is free again
        gone = asyncio.create_task(waiting.verify(HASH, PASSWORD))
        await asyncio.sleep(0)
        gone.cancel()  # the caller went away while waiting
        await asyncio.gather(gone, return_exceptions=True)
        assert checks.waiting(priority=False) == 0

        last = taken(checks.reserve(priority=False))
        holder.release()
        # The thread passes to the one still waiting, and comes back idle after.
        assert await last.verify(HASH, PASSWORD) is True
        assert await taken(checks.reserve(priority=False)).verify(HASH, PASSWORD) is True
    finally:
        checks.close()


# --- through the services --------------------------------------------------------------


# A service in this process, as aiohttp's test client drives it.
Service = TestClient[web.Request, web.Application]


async def start(
    aiohttp_client: AiohttpClient,
    create_app: Callable[..., web.Application],
    stack: Stack,
    queue: int = 0,
) -> Service:
    """A service in this process with one password-check thread and ``queue`` places in
    each line (none: a check is refused whenever the thread is busy)."""
    settings = production_settings(
        stack.redis_url,
        TESSERA_PASSWORD_CHECK_THREADS="1",
        TESSERA_PASSWORD_CHECK_QUEUE=str(queue),
    )
    client: Service = await aiohttp_client(
        create_app(settings), cookie_jar=aiohttp.DummyCookieJar(), headers=FORWARDED_HTTPS
    )
    return client


def hold_the_thread(app: web.Application) -> Place:
    """Take the one thread, as a long check would."""
    return taken(app[PASSWORD_CHECKS].reserve(priority=False))


def from_address(address: str) -> dict[str, str]:
    """The header of the trusted proxy in front (loopback) naming the client's address."""
    return {"X-Forwarded-For": address}


async def statuses(service: Service, form: dict[str, str], addresses: list[str]) -> list[int]:
    """The statuses of ``form`` posted to /token from each address, one after another."""
    found = []
    for address in addresses:
        answer = await service.post("/token", data=form, headers=from_address(address))
        found.append(answer.status)
    return found


async def test_a_busy_token_service_answers_the_password_grant_429_at_once(
    aiohttp_client: AiohttpClient, stack: Stack, redis: Redis
) -> None:
    scope = await make_scope(redis)
    user = await make_user(redis)
    client = await make_client(redis, [scope], grants=["password"], redirect_uris=[])
    assert client.secret
    service = await start(aiohttp_client, token_app, stack)
    form = {
        "grant_type": "password",
        "username": user,
        "password": PASSWORD,
        "scope": scope,
        "client_id": client.client_id,
        "client_secret": client.secret,
    }

    there = new_address()
    holder = hold_the_thread(service.app)
    async with asyncio.timeout(PROMPTLY):
        busy = await service.post("/token", data=form, headers=from_address(there))

    # RFC 6585 §4 in RFC 6749 §5.2's JSON: a moment later may work.
    assert busy.status == 429
    assert busy.headers["Retry-After"] == "1"
    assert busy.headers["Cache-Control"] == "no-store"
    body = await busy.json()
    assert body["error"] == "temporarily_unavailable"
    assert set(body) == {"error", "error_description"}

    holder.release()
    signed_in = await service.post("/token", data=form, headers=from_address(new_address()))
    assert signed_in.status == 200
    assert "access_token" in await signed_in.json()
    # Nothing was counted against the person: the attempt never happened. From there they
    # still have every failure of the pair's limit; from elsewhere, every one before the
    # username is slowed and its one paced attempt; then no more.
    guess = {**form, "password": "guess"}
    assert await statuses(service, guess, [there] * PAIR_LIMIT) == [400] * PAIR_LIMIT
    elsewhere = [new_address() for _ in range(USERNAME_LIMIT - PAIR_LIMIT + 2)]
    assert await statuses(service, guess, elsewhere) == [400] * (len(elsewhere) - 1) + [429]


async def test_a_busy_sign_in_page_asks_to_try_again_in_a_moment(
    aiohttp_client: AiohttpClient, stack: Stack, redis: Redis
) -> None:
    scope = await make_scope(redis)
    user = await make_user(redis)
    client = await make_client(redis, [scope])
    browser = await start(aiohttp_client, authorize_app, stack)
    started = await fetch(browser, "GET", "/authorize", params=code_request(client, scope))
    cookie = {"Cookie": "; ".join(f"{k}={v.value}" for k, v in started.cookies().items())}
    page = await fetch(browser, "GET", started.location, headers=cookie)
    form = {
        "interaction": query_of(started.location)["interaction"],
        "csrf_token": csrf_token(page.text),
        "username": user,
        "password": PASSWORD,
    }

    holder = hold_the_thread(browser.app)
    async with asyncio.timeout(PROMPTLY):
        busy = await fetch(browser, "POST", "/login", data=form, headers=cookie)

    # The sign-in page again, with what was typed in the username field, to retry from.
    assert busy.status == 429
    assert busy.headers["Retry-After"] == "1"
    assert busy.headers["Content-Type"].startswith("text/html")
    assert page_message(busy.text) == BUSY_PAGE
    assert f'value="{user}"' in busy.text
    assert csrf_token(busy.text) == form["csrf_token"]

    holder.release()
    signed_in = await fetch(browser, "POST", "/login", data=form, headers=cookie)
    assert signed_in.status == 303
    assert signed_in.location.startswith("/consent?")


async def test_a_limited_attempt_is_refused_without_a_password_check(
    aiohttp_client: AiohttpClient, stack: Stack, redis: Redis
) -> None:
    """With the only thread held, an attempt that needed a check would wait for it (or be
    refused as busy); attempts past a limit are refused by it at once."""
    scope = await make_scope(redis)
    user = await make_user(redis)
    client = await make_client(redis, [scope], grants=["password"], redirect_uris=[])
    service = await start(aiohttp_client, token_app, stack, queue=1)

    async def attempt(address: str, username: str = user) -> int:
        async with asyncio.timeout(PROMPTLY):
            answer = await service.post(
                "/token",
                data={
                    "grant_type": "password",
                    "username": username,
                    "password": "guess",
                    "scope": scope,
                    "client_id": client.client_id,
                    "client_secret": client.secret or "",
                },
                headers=from_address(address),
            )
        if answer.status == 429:
            assert int(answer.headers["Retry-After"]) > 1  # a limit, not a busy process
        return answer.status

    # While the thread is free: the pair's limit (5 failures and one refused) and the
    # username's threshold (10 failures) and its one paced attempt.
    there = new_address()
    assert [await attempt(there) for _ in range(6)] == [400] * 5 + [429]
    assert [await attempt(new_address()) for _ in range(5)] == [400] * 5

    holder = hold_the_thread(service.app)
    try:
        assert await attempt(there) == 429  # the pair's limit
        assert await attempt(new_address()) == 429  # the username's pace
        assert service.app[PASSWORD_CHECKS].waiting(priority=False) == 0
    finally:
        holder.release()
    # Someone else is checked as usual.
    assert await attempt(new_address(), unique("somebody")) == 400
