"""Remembered consent, prompt=none/login/consent, and the connected applications page,
over HTTP against the services as processes and a real Redis.

RFC 6749 §10.2 and RFC 8252 §8.6 on answering a repeated request without the person;
OpenID Connect Core §3.1.2.1 for ``prompt``; RFC 6749 §10.12 for the revocation form's
CSRF token; RFC 7009 / RFC 7662 for what revoking does to the tokens.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, replace
from typing import Any

import aiohttp
import orjson
import pytest
from redis.asyncio import Redis

from shared.storage import consents, keys, management
from tests.assertions import assert_error, assert_error_page
from tests.flows import (
    admin_json,
    authorize,
    code_request,
    exchange,
    is_active,
    refresh,
    sign_in,
    start_authorization,
)
from tests.records import (
    PASSWORD,
    REDIRECT_URI,
    Registered,
    make_client,
    make_resource_server,
    make_scope,
    make_user,
)
from tests.replies import Answer, csrf_token, fetch, fragment_of, query_of
from tests.stack import Stack

CSRF_FAILED = "The form has expired. Go back to the application and start again."
EXPIRED = (
    "This sign-in request has expired or is unknown. Go back to the application and start again."
)
LONG_AGO = 1_000_000_000
LONG_AGO_SHOWN = "2001-09-09T01:46:40Z"


@dataclass(frozen=True)
class Remembering:
    """A client that remembers consent, two of its scopes, and a person."""

    client: Registered
    read: str
    write: str
    user: str


async def remembering(redis: Redis, **options: Any) -> Remembering:
    read = await make_scope(redis, "Read your orders")
    write = await make_scope(redis, "Place orders for you")
    user = await make_user(redis)
    options.setdefault("remember_consent", True)
    client = await make_client(redis, [read, write], **options)
    return Remembering(client, read, write, user)


@pytest.fixture
async def theirs() -> AsyncIterator[aiohttp.ClientSession]:
    """Another person's browser."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        yield browser


async def ask(http: aiohttp.ClientSession, stack: Stack, params: dict[str, str]) -> Answer:
    """GET /authorize in a browser that may be signed in; the answer, unfollowed."""
    return await fetch(http, "GET", f"{stack.authorize}/authorize", params=params)


def assert_answered_at_once(answer: Answer, params: dict[str, str]) -> dict[str, str]:
    """Straight back to the client with a code: no login or approval page on the way."""
    assert answer.status == 303, answer.text
    assert answer.location.startswith(REDIRECT_URI + "?"), answer.location
    back = query_of(answer.location)
    assert set(back) == {"code", "state", "iss"}, back
    assert back["state"] == params["state"]
    return back


def assert_asks(answer: Answer) -> None:
    assert answer.status == 303, answer.text
    assert answer.location.startswith("/consent?interaction="), answer.location


@dataclass(frozen=True)
class Listed:
    """An approval as the person's connected applications page shows it."""

    scope: list[str]
    first_approved: str  # as <time datetime> carries it: 2001-09-09T01:46:40Z
    last_used: str


async def listed_approval(
    http: aiohttp.ClientSession, stack: Stack, client: Registered
) -> Listed | None:
    """The approval of ``client`` on the connected applications page of the person the
    browser ``http`` is signed in as; None when the page lists no such application."""
    page = await connected_apps(http, stack)
    for app in page.text.split('<li class="app">')[1:]:
        if f'name="client_id" value="{client.client_id}"' in app:
            names = re.findall(r'<span class="scope-name">([^<]*)</span>', app)
            first_approved, last_used = re.findall(r'<time datetime="([^"]+)">', app)
            return Listed([html.unescape(name) for name in names], first_approved, last_used)
    return None


async def age_the_approval(redis: Redis, user: str, client: Registered, when: int) -> None:
    """Make the person's approval of ``client`` look first approved and last used at
    ``when``: time no endpoint can move."""
    record = await consents.get(redis, user, client.client_id)
    assert record is not None
    aged = asdict(replace(record, first_approved=when, last_used=when))
    del aged["client_id"]  # the hash field's name, not part of the record
    await redis.hset(keys.consents(user), client.client_id, orjson.dumps(aged))


# --- Remembering ------------------------------------------------------------------------------


async def test_the_same_or_fewer_scopes_skip_the_page_and_the_code_works(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    r = await remembering(redis)
    both = f"{r.read} {r.write}"
    first = await authorize(http, stack, code_request(r.client, both), r.user)
    assert (await exchange(http, stack, r.client, first["code"])).body["scope"] == both
    listed = await listed_approval(http, stack, r.client)
    assert listed is not None
    assert listed.scope == [r.read, r.write]
    # Pretend the approval is old, to see which date moves.
    await age_the_approval(redis, r.user, r.client, LONG_AGO)

    for scope in (both, r.read, r.write):
        params = code_request(r.client, scope)
        back = assert_answered_at_once(await ask(http, stack, params), params)
        reply = await exchange(http, stack, r.client, back["code"])
        assert reply.status == 200, reply.body
        # What was requested, never the wider approval that covered it.
        assert reply.body["scope"] == scope

    after = await listed_approval(http, stack, r.client)
    assert after is not None
    assert after.first_approved == LONG_AGO_SHOWN
    assert after.last_used > LONG_AGO_SHOWN
    assert after.scope == [r.read, r.write]


async def test_wider_scopes_show_the_page_and_the_new_approval_adds_to_the_old(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    r = await remembering(redis)
    await authorize(http, stack, code_request(r.client, r.read), r.user)

    assert_asks(await ask(http, stack, code_request(r.client, f"{r.read} {r.write}")))
    # A request for write alone is asked about too, and approving it keeps read.
    await authorize(http, stack, code_request(r.client, r.write), r.user)
    listed = await listed_approval(http, stack, r.client)
    assert listed is not None
    assert listed.scope == [r.read, r.write]
    params = code_request(r.client, f"{r.write} {r.read}")
    assert_answered_at_once(await ask(http, stack, params), params)


async def test_a_scope_unticked_on_a_new_approval_is_forgotten(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    r = await remembering(redis)
    both = f"{r.read} {r.write}"
    await authorize(http, stack, code_request(r.client, both), r.user)

    # Asked again (prompt=consent), the person unticks write.
    back = await authorize(
        http, stack, code_request(r.client, both, prompt="consent"), r.user, tick=[r.read]
    )
    assert (await exchange(http, stack, r.client, back["code"])).body["scope"] == r.read

    listed = await listed_approval(http, stack, r.client)
    assert listed is not None
    assert listed.scope == [r.read]
    assert_asks(await ask(http, stack, code_request(r.client, r.write)))
    params = code_request(r.client, r.read)
    assert_answered_at_once(await ask(http, stack, params), params)


async def test_denying_forgets_what_the_page_showed(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    r = await remembering(redis)
    await authorize(http, stack, code_request(r.client, f"{r.read} {r.write}"), r.user)

    back = await authorize(
        http, stack, code_request(r.client, r.write, prompt="consent"), r.user, decision="deny"
    )

    assert back["error"] == "access_denied"
    listed = await listed_approval(http, stack, r.client)
    assert listed is not None
    assert listed.scope == [r.read]  # read was not on the page: it stays
    assert_asks(await ask(http, stack, code_request(r.client, r.write)))


async def test_prompt_consent_shows_the_page_although_approved(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    r = await remembering(redis)
    await authorize(http, stack, code_request(r.client, r.read), r.user)

    assert_asks(await ask(http, stack, code_request(r.client, r.read, prompt="consent")))
    # Unknown prompt values are ignored (RFC 6749 §3.1), known ones still count.
    assert_asks(await ask(http, stack, code_request(r.client, r.read, prompt="x consent")))
    params = code_request(r.client, r.read, prompt="x")
    assert_answered_at_once(await ask(http, stack, params), params)
    # OpenID Connect Core §3.1.2.1 select_account: one account per browser, so choosing
    # one is signing in again.
    answer = await ask(http, stack, code_request(r.client, r.read, prompt="select_account"))
    assert answer.status == 303 and answer.location.startswith("/login?"), answer.location


async def test_a_client_that_does_not_remember_always_asks(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    r = await remembering(redis, remember_consent=False)
    for _ in range(2):
        assert "code" in await authorize(http, stack, code_request(r.client, r.read), r.user)
    # The approval is recorded all the same: the person sees and can revoke it.
    listed = await listed_approval(http, stack, r.client)
    assert listed is not None
    assert listed.scope == [r.read]
    assert_asks(await ask(http, stack, code_request(r.client, r.read)))


async def test_another_persons_approval_never_applies(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, theirs: aiohttp.ClientSession
) -> None:
    r = await remembering(redis)
    await authorize(http, stack, code_request(r.client, r.read), r.user)
    other = await make_user(redis)

    # Another browser, signed in as someone else.
    started = await start_authorization(theirs, stack, code_request(r.client, r.read))
    signed_in = await sign_in(theirs, stack, started.headers["Location"], other, PASSWORD)
    assert signed_in.status == 303
    assert signed_in.headers["Location"].startswith("/consent?interaction=")
    assert_asks(await ask(theirs, stack, code_request(r.client, r.read)))
    assert await listed_approval(theirs, stack, r.client) is None
    # The same browser after the first person signs out and the other signs in.
    logout = await fetch(http, "GET", f"{stack.authorize}/logout")
    ended = await fetch(
        http, "POST", f"{stack.authorize}/logout", data={"csrf_token": csrf_token(logout.text)}
    )
    assert ended.status == 200
    asked = await ask(http, stack, code_request(r.client, r.read))
    assert asked.location.startswith("/login?interaction=")
    again = await sign_in(http, stack, asked.location, other, PASSWORD)
    assert again.headers["Location"].startswith("/consent?interaction=")
    assert await listed_approval(http, stack, r.client) is None


async def test_a_remembered_implicit_grant_answers_in_the_fragment(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    r = await remembering(redis, client_type="public", grants=["implicit"])
    api = await make_resource_server(redis, [r.read])
    params = code_request(r.client, r.read, response_type="token")
    first = await fetch(http, "GET", f"{stack.authorize}/authorize", params=params)
    signed_in = await sign_in(http, stack, first.location, r.user, PASSWORD)
    consent = await fetch(http, "GET", f"{stack.authorize}{signed_in.headers['Location']}")
    approved = await fetch(
        http,
        "POST",
        f"{stack.authorize}/consent",
        data=[
            ("interaction", query_of(signed_in.headers["Location"])["interaction"]),
            ("csrf_token", csrf_token(consent.text)),
            ("decision", "approve"),
            ("scope", r.read),
        ],
    )
    assert "access_token" in fragment_of(approved.location)

    params = code_request(r.client, r.read, response_type="token")
    again = await ask(http, stack, params)

    assert again.status == 303
    assert again.location.startswith(REDIRECT_URI + "#")
    answer = fragment_of(again.location)
    assert answer["state"] == params["state"]
    assert answer["scope"] == r.read
    assert "refresh_token" not in answer
    assert await is_active(http, stack, api, answer["access_token"])


# --- prompt=none and prompt=login (OpenID Connect Core §3.1.2.1) --------------------------------


async def test_prompt_none_answers_without_a_page(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    r = await remembering(redis)
    forgetful = await make_client(redis, [r.read], name="Forgetful")

    def error_of(answer: Answer, params: dict[str, str]) -> str:
        assert answer.status == 303, answer.text
        assert answer.location.startswith(REDIRECT_URI + "?")
        back = query_of(answer.location)
        assert back["state"] == params["state"]
        assert back["iss"] == stack.issuer
        assert "code" not in back
        return back["error"]

    params = code_request(r.client, r.read, prompt="none")
    assert error_of(await ask(http, stack, params), params) == "login_required"
    # Signed in, nothing approved yet: consent_required.
    await authorize(http, stack, code_request(forgetful, r.read), r.user)
    params = code_request(r.client, r.read, prompt="none")
    assert error_of(await ask(http, stack, params), params) == "consent_required"
    await authorize(http, stack, code_request(r.client, r.read), r.user)
    params = code_request(r.client, r.read, prompt="none")
    back = assert_answered_at_once(await ask(http, stack, params), params)
    assert (await exchange(http, stack, r.client, back["code"])).status == 200
    # Wider than approved, or a client that does not remember: consent_required.
    for client, scope in ((r.client, f"{r.read} {r.write}"), (forgetful, r.read)):
        params = code_request(client, scope, prompt="none")
        assert error_of(await ask(http, stack, params), params) == "consent_required"
    params = code_request(r.client, r.read, prompt="none consent")
    assert error_of(await ask(http, stack, params), params) == "invalid_request"


async def test_prompt_none_through_a_post_to_authorize(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    r = await remembering(redis)
    await authorize(http, stack, code_request(r.client, r.read), r.user)
    params = code_request(r.client, r.read, prompt="none")

    posted = await fetch(http, "POST", f"{stack.authorize}/authorize", data=params)
    resumed = await fetch(http, "GET", f"{stack.authorize}{posted.location}")

    assert_answered_at_once(resumed, params)


async def test_prompt_login_asks_a_signed_in_person_to_sign_in_again(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    r = await remembering(redis)
    await authorize(http, stack, code_request(r.client, r.read), r.user)
    params = code_request(r.client, r.read, prompt="login")

    started = await ask(http, stack, params)

    assert started.status == 303
    assert started.location.startswith("/login?interaction=")
    interaction = query_of(started.location)["interaction"]
    # Neither the approval page nor a forged decision gets past the login page.
    consent = await fetch(http, "GET", f"{stack.authorize}/consent?interaction={interaction}")
    assert consent.status == 303
    assert consent.location == started.location
    logout_page = await fetch(http, "GET", f"{stack.authorize}/logout")
    forged = await fetch(
        http,
        "POST",
        f"{stack.authorize}/consent",
        data=[
            ("interaction", interaction),
            ("csrf_token", csrf_token(logout_page.text)),
            ("decision", "approve"),
            ("scope", r.read),
        ],
    )
    assert_error_page(forged, EXPIRED)
    # A second request, so the consumed one is not reused: the login page shows its form.
    started = await ask(http, stack, params)
    login = await fetch(http, "GET", f"{stack.authorize}{started.location}")
    assert login.status == 200
    assert 'name="password"' in login.text
    signed_in = await sign_in(http, stack, started.location, r.user, PASSWORD)
    assert signed_in.status == 303
    answered = await fetch(http, "GET", f"{stack.authorize}{signed_in.headers['Location']}")
    back = assert_answered_at_once(answered, params)
    assert (await exchange(http, stack, r.client, back["code"])).status == 200


# --- The connected applications page -------------------------------------------------------------


async def connected_apps(http: aiohttp.ClientSession, stack: Stack) -> Answer:
    page = await fetch(http, "GET", f"{stack.authorize}/connected-apps")
    assert page.status == 200, page.text
    return page


def listed_client_ids(page: str) -> list[str]:
    return re.findall(r'<input type="hidden" name="client_id" value="([^"]+)">', page)


async def test_connected_apps_needs_a_sign_in_and_comes_back(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    user = await make_user(redis)

    first = await fetch(http, "GET", f"{stack.authorize}/connected-apps")

    assert first.status == 303
    assert first.location == "/login?next=%2Fconnected-apps"
    login = await fetch(http, "GET", f"{stack.authorize}{first.location}")
    assert login.status == 200
    assert '<input type="hidden" name="next" value="/connected-apps">' in login.text
    assert 'name="interaction"' not in login.text
    form = {"next": "/connected-apps", "csrf_token": csrf_token(login.text), "username": user}
    wrong = await fetch(
        http, "POST", f"{stack.authorize}/login", data={**form, "password": "not it"}
    )
    assert wrong.status == 200
    assert '<input type="hidden" name="next" value="/connected-apps">' in wrong.text
    signed_in = await fetch(
        http, "POST", f"{stack.authorize}/login", data={**form, "password": PASSWORD}
    )
    assert signed_in.status == 303
    assert signed_in.location == "/connected-apps"
    page = await connected_apps(http, stack)
    assert "No application can use your account." in page.text
    assert listed_client_ids(page.text) == []
    assert '<a href="/logout">Sign out</a>' in page.text


@pytest.mark.parametrize(
    "target", ["https://attacker.example/", "//attacker.example/", "/logout", "/consent"]
)
async def test_the_login_page_is_no_open_redirector(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, target: str
) -> None:
    """RFC 9700 §4.11: only the fixed list of pages may follow a sign-in."""
    shown = await fetch(http, "GET", f"{stack.authorize}/login", params={"next": target})
    assert_error_page(shown, EXPIRED)
    user = await make_user(redis)
    first = await fetch(http, "GET", f"{stack.authorize}/connected-apps")
    login = await fetch(http, "GET", f"{stack.authorize}{first.location}")
    posted = await fetch(
        http,
        "POST",
        f"{stack.authorize}/login",
        data={
            "next": target,
            "csrf_token": csrf_token(login.text),
            "username": user,
            "password": PASSWORD,
        },
    )
    assert_error_page(posted, EXPIRED)


async def test_revoking_an_app_forgets_the_approval_and_revokes_its_tokens(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, theirs: aiohttp.ClientSession
) -> None:
    r = await remembering(redis, refresh_count=3, description="Buys the groceries.")
    other_app = await make_client(redis, [r.read], name="Other app", refresh_count=1)
    api = await make_resource_server(redis, [r.read, r.write])
    both = f"{r.read} {r.write}"
    first = await exchange(
        http,
        stack,
        r.client,
        (await authorize(http, stack, code_request(r.client, both), r.user))["code"],
    )
    params = code_request(r.client, r.read)
    second = await exchange(
        http,
        stack,
        r.client,
        assert_answered_at_once(await ask(http, stack, params), params)["code"],
    )
    kept = await exchange(
        http,
        stack,
        other_app,
        (await authorize(http, stack, code_request(other_app, r.read), r.user))["code"],
    )
    # Someone else's grant of the same client.
    someone = await make_user(redis)
    theirs_code = (await authorize(theirs, stack, code_request(r.client, r.read), someone))["code"]
    their_tokens = await exchange(theirs, stack, r.client, theirs_code)

    page = await connected_apps(http, stack)
    assert set(listed_client_ids(page.text)) == {r.client.client_id, other_app.client_id}
    assert r.client.client.name in page.text
    assert "Buys the groceries." in page.text
    assert "Read your orders" in page.text
    assert "Place orders for you" in page.text
    assert "First approved" in page.text
    assert "Last used" in page.text
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">', page.text)

    # Without the CSRF token (RFC 6749 §10.12): refused, nothing revoked.
    for form in (
        {"client_id": r.client.client_id},
        {"client_id": r.client.client_id, "csrf_token": "x"},
    ):
        refused = await fetch(http, "POST", f"{stack.authorize}/connected-apps", data=form)
        assert_error_page(refused, CSRF_FAILED, status=403)
    assert await is_active(http, stack, api, first.body["access_token"])

    revoked = await fetch(
        http,
        "POST",
        f"{stack.authorize}/connected-apps",
        data={"client_id": r.client.client_id, "csrf_token": csrf_token(page.text)},
    )

    assert revoked.status == 303
    assert revoked.location == "/connected-apps?revoked=1"
    for reply in (first, second):
        assert not await is_active(http, stack, api, reply.body["access_token"])
        assert not await is_active(http, stack, api, reply.body["refresh_token"])
        assert_error(
            await refresh(http, stack, r.client, reply.body["refresh_token"]), 400, "invalid_grant"
        )
    after = await fetch(http, "GET", f"{stack.authorize}{revoked.location}")
    assert listed_client_ids(after.text) == [other_app.client_id]
    assert '<p class="notice" role="status">' in after.text
    # The approval page shows again.
    assert_asks(await ask(http, stack, code_request(r.client, r.read)))
    # The person's other app, and the other person's grant of this app, are untouched.
    assert await is_active(http, stack, api, kept.body["access_token"])
    assert await is_active(http, stack, api, their_tokens.body["access_token"])
    assert await listed_approval(theirs, stack, r.client) is not None


async def test_a_code_not_yet_exchanged_dies_with_the_app_removed(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """An app that holds on to a code cannot exchange it once the person removed the app:
    the code's grant family is revoked with the rest, so the exchange is invalid_grant
    (RFC 6749 §5.2) and no new grant escapes the person's list."""
    r = await remembering(redis, refresh_count=1)
    held = (await authorize(http, stack, code_request(r.client, r.read), r.user))["code"]
    page = await connected_apps(http, stack)
    assert listed_client_ids(page.text) == [r.client.client_id]

    removed = await fetch(
        http,
        "POST",
        f"{stack.authorize}/connected-apps",
        data={"client_id": r.client.client_id, "csrf_token": csrf_token(page.text)},
    )
    assert removed.status == 303

    assert_error(await exchange(http, stack, r.client, held), 400, "invalid_grant")
    after = await connected_apps(http, stack)
    assert listed_client_ids(after.text) == []


async def test_revoking_someone_elses_or_an_unknown_client_harms_nobody(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    r = await remembering(redis)
    api = await make_resource_server(redis, [r.read])
    victim_tokens = await exchange(
        http,
        stack,
        r.client,
        (await authorize(http, stack, code_request(r.client, r.read), r.user))["code"],
    )
    attacker = await make_user(redis)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as theirs:
        first = await fetch(theirs, "GET", f"{stack.authorize}/connected-apps")
        login = await fetch(theirs, "GET", f"{stack.authorize}{first.location}")
        await fetch(
            theirs,
            "POST",
            f"{stack.authorize}/login",
            data={
                "next": "/connected-apps",
                "csrf_token": csrf_token(login.text),
                "username": attacker,
                "password": PASSWORD,
            },
        )
        page = await connected_apps(theirs, stack)
        assert listed_client_ids(page.text) == []
        # Nothing listed, so no form: the attacker's own token, from the sign-out page.
        own_csrf = csrf_token((await fetch(theirs, "GET", f"{stack.authorize}/logout")).text)
        for client_id in (r.client.client_id, "no-such-client", "", "*"):
            answer = await fetch(
                theirs,
                "POST",
                f"{stack.authorize}/connected-apps",
                data={"client_id": client_id, "csrf_token": own_csrf},
            )
            assert answer.status == 303
            assert answer.location == "/connected-apps?revoked=1"

    assert await is_active(http, stack, api, victim_tokens.body["access_token"])
    assert await listed_approval(http, stack, r.client) is not None
    params = code_request(r.client, r.read)
    assert_answered_at_once(await ask(http, stack, params), params)


async def test_a_revoke_post_from_a_browser_not_signed_in_is_refused(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    r = await remembering(redis)
    await authorize(http, stack, code_request(r.client, r.read), r.user)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as stranger:
        answer = await fetch(
            stranger,
            "POST",
            f"{stack.authorize}/connected-apps",
            data={"client_id": r.client.client_id, "csrf_token": "guess"},
        )
    assert_error_page(answer, CSRF_FAILED, status=403)
    assert await listed_approval(http, stack, r.client) is not None


# --- Forgotten with the client or the scope -----------------------------------------------------


async def test_deleting_a_client_forgets_every_approval_of_it(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    r = await remembering(redis)
    await authorize(http, stack, code_request(r.client, r.read), r.user)
    assert await listed_approval(http, stack, r.client) is not None

    client_url = f"{stack.admin}/v1/clients/{r.client.client_id}"

    status, _ = await admin_json(http, "DELETE", client_url)

    assert status == 204
    # What the deletion leaves in Redis (none of the approvals): tests/test_storage.py.
    assert listed_client_ids((await connected_apps(http, stack)).text) == []


async def test_deleting_a_scope_takes_it_out_of_remembered_approvals(
    stack: Stack, redis: Redis
) -> None:
    """No client may hold a scope when it is deleted; an approval left from an earlier
    client of it must not stand for a new scope of the same name."""
    user = await make_user(redis)
    gone, stays = await make_scope(redis), await make_scope(redis)
    await consents.record(redis, user, "client-a", [gone, stays], [gone, stays])
    await consents.record(redis, user, "client-b", [gone], [gone])

    await management.delete_scope(redis, gone)

    remembered = {c.client_id: c.scope for c in await consents.list_for(redis, user)}
    assert remembered == {"client-a": [stays]}


def test_a_remembered_approval_covers_only_what_it_holds() -> None:
    approval = consents.Consent("c", ["a", "b"], 1, 1)
    assert approval.covers(["a"])
    assert approval.covers(["b", "a"])
    assert not approval.covers(["a", "c"])
    assert not approval.covers([])


async def test_a_remembered_approval_never_answers_an_unregistered_redirect_uri(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """/authorize compares the redirect URI exactly before anything is remembered or
    used (RFC 9700 §4.1.3), so a near miss gets the error page, never a code."""
    r = await remembering(redis)
    await authorize(http, stack, code_request(r.client, r.read), r.user)

    for uri in (
        REDIRECT_URI + "/",
        REDIRECT_URI + "?next=https://attacker.example",
        REDIRECT_URI.upper(),
        "https://attacker.example/callback",
    ):
        answer = await ask(http, stack, code_request(r.client, r.read, redirect_uri=uri))
        assert_error_page(answer, "The return address does not belong to the application.")
