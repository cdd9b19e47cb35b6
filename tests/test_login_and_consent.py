"""The login page, the approval (consent) page, browser sessions and CSRF protection of the
authorize service (RFC 6749 §10.12 CSRF, §10.13 clickjacking; RFC 9700 §4.4, §4.7), over
HTTP against the services as processes, and in process for production-mode settings.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from http.cookies import Morsel
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pytest_aiohttp import AiohttpClient
from redis.asyncio import Redis

from services.authorize.app import create_app
from shared.storage import keys
from tests.assertions import assert_access_denied, assert_error_page
from tests.flows import code_request, exchange, introspect, sign_in, start_authorization
from tests.records import (
    PASSWORD,
    Registered,
    make_client,
    make_resource_server,
    make_scope,
    make_setup,
    make_user,
)
from tests.replies import (
    SESSION_COOKIE,
    Answer,
    csrf_token,
    fetch,
    page_message,
    query_of,
    session_cookie,
)
from tests.stack import FORWARDED_HTTPS, Stack, production_settings

SECURE_COOKIE = "__Host-tessera_session"
SECURE_DEVICE_COOKIE = "__Host-tessera_device"
LOGIN_FAILED = "The username or password is incorrect."
CSRF_FAILED = "The form has expired. Go back to the application and start again."
EXPIRED = (
    "This sign-in request has expired or is unknown. Go back to the application and start again."
)
HTTPS_ISSUER = "https://id.example.com"


@pytest.fixture
async def bare() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that keeps no cookies: each request carries exactly the Cookie header given."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


def text_of(page: str) -> str:
    """The page as a person reads it: no tags, entities decoded, spaces collapsed."""
    without_tags = re.sub(r"<[^>]+>", " ", page)
    return re.sub(r"\s+", " ", html.unescape(without_tags)).strip()


def assert_cookie_attributes(morsel: Morsel[str], *, secure: bool, signed_in: bool) -> None:
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["path"] == "/"
    assert morsel["domain"] == ""  # host-only
    # Before sign-in the session only carries an interaction and lives as long as one.
    assert morsel["max-age"] == ("28800" if signed_in else "600")
    if secure:
        assert morsel["secure"] is True
    else:
        assert morsel["secure"] == ""
    assert len(morsel.value) >= 43  # 256 bits


def consent_form(
    interaction: str, csrf: str | None, decision: str = "approve", ticked: Sequence[str] = ()
) -> list[tuple[str, str]]:
    form = [("interaction", interaction), ("decision", decision)]
    if csrf is not None:
        form.append(("csrf_token", csrf))
    return form + [("scope", name) for name in ticked]


async def code_count(redis: Redis) -> int:
    """How many codes Redis holds: a storage check. A refused decision must store no
    code, though nobody could learn one it stored."""
    return len([k async for k in redis.scan_iter(match=keys.code("*", "*"), count=1000)])


@dataclass(frozen=True)
class AtConsent:
    """A signed-in browser looking at the approval page."""

    client: Registered
    scopes: list[str]
    user: str
    params: dict[str, str]
    location: str
    interaction: str
    page: str
    csrf: str


async def to_consent(
    http: aiohttp.ClientSession,
    stack: Stack,
    redis: Redis,
    *,
    requested: int = 1,
    extra_scopes: int = 0,
    **client_options: Any,
) -> AtConsent:
    names = [await make_scope(redis) for _ in range(requested + extra_scopes)]
    user = await make_user(redis)
    client = await make_client(redis, names, **client_options)
    params = code_request(client, " ".join(names[:requested]))
    started = await start_authorization(http, stack, params)
    assert started.status == 303
    signed_in = await sign_in(http, stack, started.headers["Location"], user, PASSWORD)
    assert signed_in.status == 303
    location = signed_in.headers["Location"]
    assert location.startswith("/consent?interaction=")
    page = await fetch(http, "GET", f"{stack.authorize}{location}")
    assert page.status == 200
    return AtConsent(
        client=client,
        scopes=names,
        user=user,
        params=params,
        location=location,
        interaction=query_of(location)["interaction"],
        page=page.text,
        csrf=csrf_token(page.text),
    )


async def to_login(
    http: aiohttp.ClientSession, stack: Stack, redis: Redis
) -> tuple[Registered, str, str]:
    """A browser on the login page; returns the client, the interaction and the CSRF token."""
    read = await make_scope(redis)
    client = await make_client(redis, [read])
    started = await start_authorization(http, stack, code_request(client, read))
    assert started.status == 303
    location = started.headers["Location"]
    page = await fetch(http, "GET", f"{stack.authorize}{location}")
    assert page.status == 200
    return client, query_of(location)["interaction"], csrf_token(page.text)


async def post_login(http: Any, stack: Stack, form: dict[str, str], **kwargs: Any) -> Answer:
    return await fetch(http, "POST", f"{stack.authorize}/login", data=form, **kwargs)


async def post_consent(
    http: Any, stack: Stack, form: list[tuple[str, str]], **kwargs: Any
) -> Answer:
    return await fetch(http, "POST", f"{stack.authorize}/consent", data=form, **kwargs)


async def authorize_location(
    http: aiohttp.ClientSession, stack: Stack, client: Registered, scope: str
) -> str:
    answer = await fetch(
        http, "GET", f"{stack.authorize}/authorize", params=code_request(client, scope)
    )
    assert answer.status == 303
    return answer.location


# --- Login ----------------------------------------------------------------------------------


async def test_wrong_password_and_unknown_username_look_the_same(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    user = await make_user(redis)
    _, interaction, csrf = await to_login(http, stack, redis)
    cookie = session_cookie(http, stack)
    form = {"interaction": interaction, "csrf_token": csrf}

    wrong_password = await post_login(
        http, stack, {**form, "username": user, "password": "not the password"}
    )
    unknown_user = await post_login(
        http, stack, {**form, "username": "nobody-" + user, "password": PASSWORD}
    )

    for answer in (wrong_password, unknown_user):
        assert answer.status == 200
        assert "Location" not in answer.headers
        assert "Set-Cookie" not in answer.headers  # no session upgrade
        assert page_message(answer.text) == LOGIN_FAILED
        lowered = page_message(answer.text).lower()
        for telltale in ("unknown", "not found", "no such", "does not exist", "wrong password"):
            assert telltale not in lowered
    # The typed username comes back in its field, so the person need not retype it.
    assert f'value="{user}"' in wrong_password.text
    assert f'value="nobody-{user}"' in unknown_user.text
    # Otherwise byte for byte the same page: nothing tells the two causes apart.
    assert wrong_password.text.replace(user, "USER") == unknown_user.text.replace(
        f"nobody-{user}", "USER"
    )
    # Still the same anonymous session, and still not signed in.
    assert session_cookie(http, stack) == cookie
    consent = await fetch(http, "GET", f"{stack.authorize}/consent?interaction={interaction}")
    assert consent.status == 303
    assert consent.location == f"/login?interaction={interaction}"
    # The form still works with the right password afterwards.
    right = await post_login(http, stack, {**form, "username": user, "password": PASSWORD})
    assert right.status == 303
    assert right.location == f"/consent?interaction={interaction}"


async def test_the_session_cookie_in_development_mode(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)

    started = await start_authorization(http, stack, code_request(s.client, s.scope))
    before = Answer(started.status, started.headers, "").cookies()
    assert set(before) == {SESSION_COOKIE}
    assert_cookie_attributes(before[SESSION_COOKIE], secure=False, signed_in=False)

    signed_in = await sign_in(http, stack, started.headers["Location"], s.user, PASSWORD)
    after = Answer(signed_in.status, signed_in.headers, "").cookies()
    assert set(after) == {SESSION_COOKIE, "tessera_device"}  # device: test_login_throttle
    assert_cookie_attributes(after[SESSION_COOKIE], secure=False, signed_in=True)


async def test_signing_in_replaces_the_session_id(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, bare: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    started = await start_authorization(http, stack, code_request(s.client, s.scope))
    login = started.headers["Location"]
    interaction = query_of(login)["interaction"]
    old = session_cookie(http, stack)
    login_page = await fetch(http, "GET", f"{stack.authorize}{login}")
    old_csrf = csrf_token(login_page.text)

    signed_in = await sign_in(http, stack, login, s.user, PASSWORD)

    assert signed_in.status == 303
    new = signed_in.cookies[SESSION_COOKIE].value
    assert new != old
    assert session_cookie(http, stack) == new
    # The old id is retired, and with it its CSRF token and browser value.
    consent = await fetch(http, "GET", f"{stack.authorize}{signed_in.headers['Location']}")
    assert consent.status == 200
    assert csrf_token(consent.text) != old_csrf
    # Whoever kept the old cookie has no session, and so no part in the interaction.
    with_old = {"Cookie": f"{SESSION_COOKIE}={old}"}
    stale = await fetch(
        bare, "GET", f"{stack.authorize}/consent?interaction={interaction}", headers=with_old
    )
    assert_error_page(stale, EXPIRED)
    forged = await post_consent(
        bare,
        stack,
        consent_form(interaction, csrf_token(consent.text), ticked=[s.scope]),
        headers=with_old,
    )
    assert_error_page(forged, CSRF_FAILED, status=403)
    # The login page does not adopt the dead id either.
    relogin = await fetch(
        bare, "GET", f"{stack.authorize}/login?interaction={interaction}", headers=with_old
    )
    assert_error_page(relogin, EXPIRED)
    assert "Set-Cookie" not in relogin.headers


async def test_a_session_id_the_server_did_not_issue_is_not_adopted(
    stack: Stack, redis: Redis, bare: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    client = await make_client(redis, [read])
    planted = "attacker-chosen-session-id-0123456789abcdefghij"

    answer = await fetch(
        bare,
        "GET",
        f"{stack.authorize}/authorize",
        params=code_request(client, read),
        headers={"Cookie": f"{SESSION_COOKIE}={planted}"},
    )

    assert answer.status == 303
    issued = answer.cookies()[SESSION_COOKIE].value
    assert issued != planted
    # Nor is a session stored under it: with it, the interaction is not the browser's.
    interaction = query_of(answer.location)["interaction"]
    stale = await fetch(
        bare,
        "GET",
        f"{stack.authorize}/login?interaction={interaction}",
        headers={"Cookie": f"{SESSION_COOKIE}={planted}"},
    )
    assert_error_page(stale, EXPIRED)


# --- Production mode, in process: __Host- cookie, branding, escaping --------------------------


async def test_outside_development_mode_with_branding_and_escaping(
    stack: Stack, redis: Redis, aiohttp_client: AiohttpClient
) -> None:
    settings = production_settings(
        stack.redis_url,
        TESSERA_APPROVAL_TITLE="Acme Identity",
        TESSERA_APPROVAL_HEADER="Let Acme share your data",
        TESSERA_APPROVAL_LOGO_URL="https://cdn.example.com/acme-logo.png",
        TESSERA_APPROVAL_FOOTER="<b>Acme</b> & Co · Terms",
    )
    # No cookie jar: a Secure cookie would not be sent over the test server's plain http.
    browser = await aiohttp_client(
        create_app(settings), cookie_jar=aiohttp.DummyCookieJar(), headers=FORWARDED_HTTPS
    )
    read = await make_scope(redis, "<b>Read</b> your <i>things</i>")
    user = await make_user(redis)
    client = await make_client(
        redis,
        [read],
        name="<script>alert(1)</script>",
        version="1.0",
        description='<img src=x onerror="alert(2)">',
    )

    started = await fetch(browser, "GET", "/authorize", params=code_request(client, read))
    assert started.status == 303
    anonymous = started.cookies()
    assert set(anonymous) == {SECURE_COOKIE}
    assert_cookie_attributes(anonymous[SECURE_COOKIE], secure=True, signed_in=False)
    login_location = started.location

    login = await fetch(
        browser,
        "GET",
        login_location,
        headers={"Cookie": f"{SECURE_COOKIE}={anonymous[SECURE_COOKIE].value}"},
    )
    assert login.status == 200
    assert "Set-Cookie" not in login.headers  # the session was found by its __Host- name
    assert "<script>" not in login.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; (1.0)" in login.text
    assert '<img class="logo" src="https://cdn.example.com/acme-logo.png" alt="">' in login.text
    assert "<title>Sign in · Acme Identity</title>" in login.text

    signed_in = await fetch(
        browser,
        "POST",
        "/login",
        data={
            "interaction": query_of(login_location)["interaction"],
            "csrf_token": csrf_token(login.text),
            "username": user,
            "password": PASSWORD,
        },
        headers={"Cookie": f"{SECURE_COOKIE}={anonymous[SECURE_COOKIE].value}"},
    )
    assert signed_in.status == 303
    session = signed_in.cookies()
    assert set(session) == {SECURE_COOKIE, SECURE_DEVICE_COOKIE}
    assert_cookie_attributes(session[SECURE_COOKIE], secure=True, signed_in=True)
    # The browser is known to the user from now on (README "Sign-in limits").
    device = session[SECURE_DEVICE_COOKIE]
    assert (device["secure"], device["httponly"], device["samesite"]) == (True, True, "Lax")
    assert (device["path"], device["domain"], device["max-age"]) == ("/", "", "2592000")
    with_session = {"Cookie": f"{SECURE_COOKIE}={session[SECURE_COOKIE].value}"}

    consent = await fetch(browser, "GET", signed_in.location, headers=with_session)

    assert consent.status == 200
    page = consent.text
    assert "<title>Let Acme share your data · Acme Identity</title>" in page
    assert "<h1>Let Acme share your data</h1>" in page
    assert '<span class="brand-title">Acme Identity</span>' in page
    assert '<img class="logo" src="https://cdn.example.com/acme-logo.png" alt="">' in page
    assert '<footer class="footer">&lt;b&gt;Acme&lt;/b&gt; &amp; Co · Terms</footer>' in page
    # RFC 6749 §10.14 / autoescape: nothing the client or an admin typed becomes markup.
    assert "<script>" not in page
    assert "<img src=x" not in page
    assert "<b>" not in page
    assert "<i>" not in page
    assert (
        '<strong class="client-name">&lt;script&gt;alert(1)&lt;/script&gt; (1.0)</strong>'
        " is requesting access"
    ) in page
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in page
    assert "&lt;b&gt;Read&lt;/b&gt; your &lt;i&gt;things&lt;/i&gt;" in page
    assert "<script>alert(1)</script> (1.0) is requesting access" in text_of(page)

    # Signing out clears the __Host- cookie with the same attributes, or browsers ignore it.
    logout = await fetch(browser, "GET", "/logout", headers=with_session)
    ended = await fetch(
        browser,
        "POST",
        "/logout",
        data={"csrf_token": csrf_token(logout.text)},
        headers=with_session,
    )
    assert ended.status == 200
    cleared = ended.cookies()[SECURE_COOKIE]
    assert cleared.value == ""
    assert cleared["max-age"] == "0"
    assert cleared["secure"] is True
    assert cleared["path"] == "/"


async def test_an_operators_templates_replace_the_built_in_ones_and_stay_escaped(
    stack: Stack, redis: Redis, aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    """TESSERA_TEMPLATE_DIR: a template there replaces the built-in one of the same name,
    may extend the built-in base, and is autoescaped like it; the rest fall back."""
    (tmp_path / "login.html").write_text(
        '{% extends "base.html" %}{% block content %}'
        "<h1>Acme sign-in</h1>"
        '<p class="acme-client">{{ client.display_name }} · {{ client.description }}</p>'
        '<form method="post" action="/login">'
        '<input type="hidden" name="interaction" value="{{ interaction }}">'
        '<input type="hidden" name="csrf_token" value="{{ csrf_token }}">'
        '<label for="username">Username</label><input id="username" name="username">'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password">'
        "<button>Sign in</button></form>{% endblock %}"
    )
    settings = production_settings(stack.redis_url, TESSERA_TEMPLATE_DIR=str(tmp_path))
    browser = await aiohttp_client(
        create_app(settings), cookie_jar=aiohttp.DummyCookieJar(), headers=FORWARDED_HTTPS
    )
    read = await make_scope(redis)
    user = await make_user(redis)
    client = await make_client(
        redis, [read], name="<script>alert(1)</script>", description="<b>bold</b>"
    )

    started = await fetch(browser, "GET", "/authorize", params=code_request(client, read))
    cookie = {"Cookie": f"{SECURE_COOKIE}={started.cookies()[SECURE_COOKIE].value}"}
    login = await fetch(browser, "GET", started.location, headers=cookie)

    assert login.status == 200
    assert "<h1>Acme sign-in</h1>" in login.text
    assert '<span class="brand-title">Tessera</span>' in login.text  # the built-in base
    assert (
        '<p class="acme-client">&lt;script&gt;alert(1)&lt;/script&gt; · &lt;b&gt;bold&lt;/b&gt;</p>'
        in login.text
    )
    assert "<script>" not in login.text
    assert "<b>" not in login.text
    # Not overridden: the built-in approval page, after signing in through the override.
    signed_in = await fetch(
        browser,
        "POST",
        "/login",
        data={
            "interaction": query_of(started.location)["interaction"],
            "csrf_token": csrf_token(login.text),
            "username": user,
            "password": PASSWORD,
        },
        headers=cookie,
    )
    assert signed_in.status == 303
    session = {"Cookie": f"{SECURE_COOKIE}={signed_in.cookies()[SECURE_COOKIE].value}"}
    consent = await fetch(browser, "GET", signed_in.location, headers=session)
    assert consent.status == 200
    assert "is requesting access" in consent.text
    assert '<strong class="client-name">&lt;script&gt;alert(1)&lt;/script&gt;</strong>' in (
        consent.text
    )


# --- CSRF (RFC 6749 §10.12) -----------------------------------------------------------------


async def test_consent_post_without_a_valid_csrf_token_is_refused(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    at = await to_consent(http, stack, redis)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        # Another person's browser, signed in, with a CSRF token of its own.
        elsewhere = await to_consent(other, stack, redis)
    assert elsewhere.csrf != at.csrf
    codes_before = await code_count(redis)

    for csrf in (None, "", "not-the-token", at.csrf[:-1], elsewhere.csrf):
        answer = await post_consent(
            http, stack, consent_form(at.interaction, csrf, ticked=at.scopes[:1])
        )
        assert_error_page(answer, CSRF_FAILED, status=403)

    assert await code_count(redis) == codes_before
    # The refused posts consumed nothing: the rightful user can still decide.
    page = await fetch(http, "GET", f"{stack.authorize}{at.location}")
    assert page.status == 200
    approved = await post_consent(
        http, stack, consent_form(at.interaction, at.csrf, ticked=at.scopes[:1])
    )
    assert approved.status == 303
    back = query_of(approved.location)
    assert back["code"]
    assert back["state"] == at.params["state"]
    assert await code_count(redis) == codes_before + 1


async def test_consent_post_with_the_pre_login_csrf_token_is_refused(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    started = await start_authorization(http, stack, code_request(s.client, s.scope))
    login = started.headers["Location"]
    old_csrf = csrf_token((await fetch(http, "GET", f"{stack.authorize}{login}")).text)
    signed_in = await sign_in(http, stack, login, s.user, PASSWORD)
    assert signed_in.status == 303

    answer = await post_consent(
        http, stack, consent_form(query_of(login)["interaction"], old_csrf, ticked=[s.scope])
    )

    assert_error_page(answer, CSRF_FAILED, status=403)


async def test_login_post_without_a_valid_csrf_token_is_refused(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, bare: aiohttp.ClientSession
) -> None:
    user = await make_user(redis)
    _, interaction, csrf = await to_login(http, stack, redis)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        _, _, other_csrf = await to_login(other, stack, redis)
    cookie = session_cookie(http, stack)
    credentials = {"interaction": interaction, "username": user, "password": PASSWORD}

    for form in (
        credentials,
        {**credentials, "csrf_token": "not-the-token"},
        {**credentials, "csrf_token": other_csrf},
    ):
        answer = await post_login(http, stack, form)
        assert_error_page(answer, CSRF_FAILED, status=403)
        assert "Set-Cookie" not in answer.headers
    # The right token without the session cookie it belongs to is refused too.
    cookieless = await post_login(bare, stack, {**credentials, "csrf_token": csrf})
    assert_error_page(cookieless, CSRF_FAILED, status=403)

    # Nothing was signed in by any of these.
    assert session_cookie(http, stack) == cookie
    consent = await fetch(http, "GET", f"{stack.authorize}/consent?interaction={interaction}")
    assert consent.status == 303
    assert consent.location == f"/login?interaction={interaction}"
    right = await post_login(http, stack, {**credentials, "csrf_token": csrf})
    assert right.status == 303
    assert right.location == f"/consent?interaction={interaction}"


async def test_logout_post_without_a_valid_csrf_token_is_refused(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    at = await to_consent(http, stack, redis)
    cookie = session_cookie(http, stack)

    for form in ({}, {"csrf_token": "not-the-token"}):
        answer = await fetch(http, "POST", f"{stack.authorize}/logout", data=form)
        assert_error_page(answer, CSRF_FAILED, status=403)
        assert "Set-Cookie" not in answer.headers

    # Still signed in, in the same session: a new request goes straight to the approval page.
    assert session_cookie(http, stack) == cookie
    location = await authorize_location(http, stack, at.client, at.scopes[0])
    assert location.startswith("/consent?interaction=")


# --- The interaction -------------------------------------------------------------------------


async def test_consent_for_an_unknown_interaction_is_an_error_page(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    at = await to_consent(http, stack, redis)

    for interaction in ("no-such-interaction", ""):
        posted = await post_consent(
            http, stack, consent_form(interaction, at.csrf, ticked=at.scopes)
        )
        assert_error_page(posted, EXPIRED)
        shown = await fetch(http, "GET", f"{stack.authorize}/consent?interaction={interaction}")
        assert_error_page(shown, EXPIRED)
        login = await fetch(http, "GET", f"{stack.authorize}/login?interaction={interaction}")
        assert_error_page(login, EXPIRED)
    without = await post_consent(http, stack, [("csrf_token", at.csrf), ("decision", "approve")])
    assert_error_page(without, EXPIRED)


async def test_consent_for_an_expired_interaction_is_an_error_page(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    at = await to_consent(http, stack, redis)
    # The interaction lives as long as TESSERA_INTERACTION_LIFETIME (its TTL:
    # tests/test_storage.py), and then Redis removes it, as here.
    await redis.delete(keys.interaction(at.interaction))
    codes_before = await code_count(redis)

    posted = await post_consent(
        http, stack, consent_form(at.interaction, at.csrf, ticked=at.scopes)
    )

    assert_error_page(posted, EXPIRED)
    assert await code_count(redis) == codes_before
    shown = await fetch(http, "GET", f"{stack.authorize}{at.location}")
    assert_error_page(shown, EXPIRED)


@pytest.mark.parametrize("first", ["approve", "deny"])
async def test_an_interaction_is_decided_only_once(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, first: str
) -> None:
    at = await to_consent(http, stack, redis)
    codes_before = await code_count(redis)

    decided = await post_consent(
        http, stack, consent_form(at.interaction, at.csrf, first, ticked=at.scopes)
    )
    assert decided.status == 303
    back = query_of(decided.location)
    assert ("code" in back) == (first == "approve")
    assert await code_count(redis) == codes_before + (first == "approve")

    for decision in ("approve", "deny"):
        again = await post_consent(
            http, stack, consent_form(at.interaction, at.csrf, decision, ticked=at.scopes)
        )
        assert_error_page(again, EXPIRED)
    assert await code_count(redis) == codes_before + (first == "approve")


async def test_consent_without_being_signed_in_goes_to_login_for_the_same_interaction(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, bare: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    client = await make_client(redis, [read])
    started = await start_authorization(http, stack, code_request(client, read))
    interaction = query_of(started.headers["Location"])["interaction"]
    consent_url = f"{stack.authorize}/consent?interaction={interaction}"

    anonymous = await fetch(http, "GET", consent_url)  # the anonymous session that started it
    cookieless = await fetch(bare, "GET", consent_url)  # another browser, no session at all

    assert anonymous.status == 303
    assert anonymous.location == f"/login?interaction={interaction}"
    assert "Set-Cookie" not in anonymous.headers
    # The interaction belongs to the browser session that started it.
    assert_error_page(cookieless, EXPIRED)
    login = await fetch(http, "GET", f"{stack.authorize}{anonymous.location}")
    assert login.status == 200
    assert f'<input type="hidden" name="interaction" value="{interaction}">' in login.text
    # And a POST by an anonymous session with its own valid CSRF token decides nothing.
    posted = await post_consent(
        http, stack, consent_form(interaction, csrf_token(login.text), ticked=[read])
    )
    assert_error_page(posted, EXPIRED)
    # The interaction still waits for its browser to sign in.
    assert (await fetch(http, "GET", f"{stack.authorize}{anonymous.location}")).status == 200


# --- The approval page ------------------------------------------------------------------------


async def test_the_approval_page_shows_the_client_and_each_requested_scope(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    photos = await make_scope(redis, "Read your photos")
    upload = await make_scope(redis, "Upload new photos")
    delete = await make_scope(redis, "Delete your photos")
    user = await make_user(redis)
    client = await make_client(
        redis,
        [photos, upload, delete],
        name="Photo Printer",
        version="2.1",
        description="Prints the photos you choose.",
    )
    started = await start_authorization(http, stack, code_request(client, f"{photos} {upload}"))
    signed_in = await sign_in(http, stack, started.headers["Location"], user, PASSWORD)
    interaction = query_of(signed_in.headers["Location"])["interaction"]

    answer = await fetch(http, "GET", f"{stack.authorize}{signed_in.headers['Location']}")

    assert answer.status == 200
    page, text = answer.text, text_of(answer.text)
    assert "Photo Printer (2.1) is requesting access" in text
    assert '<p class="client-description">Prints the photos you choose.</p>' in page
    # One ticked checkbox per requested scope, in order, and none for the unrequested one.
    assert re.findall(r'<input type="checkbox" name="scope" value="([^"]+)" checked>', page) == [
        photos,
        upload,
    ]
    assert f"{photos} Read your photos" in text
    assert f"{upload} Upload new photos" in text
    assert delete not in page
    assert "Delete your photos" not in page
    assert re.search(
        r'<button type="submit" name="decision" value="approve"[^>]*>Approve</button>', page
    )
    assert re.search(r'<button type="submit" name="decision" value="deny"[^>]*>Deny</button>', page)
    assert f'<input type="hidden" name="interaction" value="{interaction}">' in page
    assert f"Signed in as {user}" in text
    assert '<form method="post" action="/consent">' in page


async def test_the_approval_page_of_a_client_without_version_shows_the_name_alone(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    at = await to_consent(http, stack, redis, name="Plain App")

    text = text_of(at.page)

    assert "Plain App is requesting access" in text
    assert "()" not in text
    assert "client-description" not in at.page


# --- Security headers on every page (RFC 6749 §10.13, RFC 9700 §4.16) ---------------------------


async def _page(kind: str, stack: Stack, redis: Redis, http: aiohttp.ClientSession) -> Answer:
    base = stack.authorize
    if kind == "error":
        return await fetch(http, "GET", f"{base}/authorize", params={"client_id": "nobody"})
    if kind == "expired":
        return await fetch(http, "GET", f"{base}/login?interaction=nothing")
    if kind in ("login", "failed-login", "login-csrf"):
        _, interaction, csrf = await to_login(http, stack, redis)
        if kind == "login":
            return await fetch(http, "GET", f"{base}/login?interaction={interaction}")
        form = {"interaction": interaction, "username": "nobody", "password": "wrong-password"}
        if kind == "failed-login":
            form["csrf_token"] = csrf
        return await post_login(http, stack, form)
    at = await to_consent(http, stack, redis)
    if kind == "consent":
        return await fetch(http, "GET", f"{base}{at.location}")
    if kind == "consent-csrf":
        return await post_consent(http, stack, consent_form(at.interaction, None))
    if kind == "logout":
        return await fetch(http, "GET", f"{base}/logout")
    if kind == "connected-apps":
        return await fetch(http, "GET", f"{base}/connected-apps")
    if kind == "connected-apps-csrf":
        return await fetch(http, "POST", f"{base}/connected-apps", data={"client_id": "x"})
    assert kind == "signed-out"
    return await fetch(http, "POST", f"{base}/logout", data={"csrf_token": at.csrf})


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("error", 400),
        ("expired", 400),
        ("login", 200),
        ("failed-login", 200),
        ("login-csrf", 403),
        ("consent", 200),
        ("consent-csrf", 403),
        ("logout", 200),
        ("connected-apps", 200),
        ("connected-apps-csrf", 403),
        ("signed-out", 200),
    ],
)
async def test_every_page_forbids_framing_and_caching(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, kind: str, status: int
) -> None:
    answer = await _page(kind, stack, redis, http)

    assert answer.status == status, answer.text
    assert answer.headers["Content-Type"].startswith("text/html")
    assert answer.headers["X-Frame-Options"] == "DENY"
    csp = [d.strip() for d in answer.headers["Content-Security-Policy"].split(";")]
    assert "frame-ancestors 'none'" in csp
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "no-referrer"


# --- Logout ---------------------------------------------------------------------------------


async def test_after_logout_a_new_request_goes_to_login_again(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    at = await to_consent(http, stack, redis)
    cookie = session_cookie(http, stack)
    logout_page = await fetch(http, "GET", f"{stack.authorize}/logout")
    assert logout_page.status == 200
    assert f"Signed in as {at.user}" in text_of(logout_page.text)
    assert csrf_token(logout_page.text) == at.csrf

    ended = await fetch(
        http, "POST", f"{stack.authorize}/logout", data={"csrf_token": csrf_token(logout_page.text)}
    )

    assert ended.status == 200
    assert "Signed out" in text_of(ended.text)
    cleared = ended.cookies()[SESSION_COOKIE]
    assert cleared.value == ""
    assert cleared["max-age"] == "0"
    assert cleared["path"] == "/"
    location = await authorize_location(http, stack, at.client, at.scopes[0])
    assert location.startswith("/login?interaction=")
    # Even a browser that kept the old cookie is signed out: its session is gone, and with
    # it the interactions it had started.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as kept:
        stale = await fetch(
            kept,
            "GET",
            f"{stack.authorize}{at.location}",
            headers={"Cookie": f"{SESSION_COOKIE}={cookie}"},
        )
    assert_error_page(stale, EXPIRED)


# --- Scopes on the approval form -------------------------------------------------------------


async def test_a_forged_form_cannot_grant_a_scope_that_was_not_requested(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    # The client may have three scopes; the request asks for the first only.
    at = await to_consent(http, stack, redis, requested=1, extra_scopes=2)
    requested, *unrequested = at.scopes
    api = await make_resource_server(redis, [requested])
    forged = [requested, *unrequested, "never-defined-scope", "openid"]

    approved = await post_consent(http, stack, consent_form(at.interaction, at.csrf, ticked=forged))

    assert approved.status == 303
    back = query_of(approved.location)
    reply = await exchange(http, stack, at.client, back["code"])
    assert reply.status == 200, reply.body
    assert reply.body["scope"] == requested
    info = await introspect(http, stack, api, reply.body["access_token"])
    assert info.body["active"] is True
    assert info.body["scope"] == requested


async def test_a_forged_form_ticking_only_unrequested_scopes_is_a_denial(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    at = await to_consent(http, stack, redis, requested=1, extra_scopes=1)
    codes_before = await code_count(redis)

    answer = await post_consent(
        http, stack, consent_form(at.interaction, at.csrf, ticked=at.scopes[1:])
    )

    assert answer.status == 303
    back = query_of(answer.location)
    assert_access_denied(back, stack, at.params["state"])
    assert await code_count(redis) == codes_before


async def test_an_interaction_id_is_worthless_in_another_browser(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """The attacker, signed in with a session and CSRF token of their own, learns the
    victim's interaction id and tries to see and decide it."""
    victim = await to_consent(http, stack, redis)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as attacker:
        own = await to_consent(attacker, stack, redis)
        codes_before = await code_count(redis)

        seen = await fetch(
            attacker, "GET", f"{stack.authorize}/consent?interaction={victim.interaction}"
        )
        decided = await post_consent(
            attacker, stack, consent_form(victim.interaction, own.csrf, ticked=victim.scopes)
        )
        login = await fetch(
            attacker, "GET", f"{stack.authorize}/login?interaction={victim.interaction}"
        )

    assert_error_page(seen, EXPIRED)
    assert_error_page(decided, EXPIRED)
    assert_error_page(login, EXPIRED)
    assert await code_count(redis) == codes_before
    # The victim's own approval still works.
    mine = await post_consent(
        http, stack, consent_form(victim.interaction, victim.csrf, ticked=victim.scopes)
    )
    assert mine.status == 303
    assert "code" in query_of(mine.location)


# --- Sessions across tabs and sites -----------------------------------------------------------


async def test_signing_in_in_one_tab_keeps_the_other_tabs_requests(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    tab_a = await start_authorization(http, stack, code_request(s.client, s.scope))
    tab_b = await start_authorization(http, stack, code_request(s.client, s.scope))
    interaction_b = query_of(tab_b.headers["Location"])["interaction"]

    signed_in = await sign_in(http, stack, tab_a.headers["Location"], s.user, PASSWORD)
    assert signed_in.status == 303

    # Tab B's login link now leads straight on to its approval page.
    login_b = await fetch(http, "GET", f"{stack.authorize}{tab_b.headers['Location']}")
    assert login_b.status == 303
    assert login_b.location == f"/consent?interaction={interaction_b}"
    consent_b = await fetch(http, "GET", f"{stack.authorize}{login_b.location}")
    assert consent_b.status == 200
    decided = await post_consent(
        http, stack, consent_form(interaction_b, csrf_token(consent_b.text), ticked=[s.scope])
    )
    assert decided.status == 303
    assert "code" in query_of(decided.location)


async def test_a_cross_site_post_to_authorize_does_not_sign_the_person_out(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """A cross-site POST carries no SameSite=Lax cookie. Tessera must not answer it with a
    new session (which would replace the signed-in one); the GET it redirects to carries
    the cookie and finds the person signed in."""
    s = await make_setup(redis)
    await to_consent(http, stack, redis)  # signed in as someone
    signed_in_cookie = session_cookie(http, stack)

    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as cross_site:
        posted = await fetch(
            cross_site,
            "POST",
            f"{stack.authorize}/authorize",
            data=code_request(s.client, s.scope),
        )
    assert posted.status == 303
    assert "Set-Cookie" not in posted.headers
    assert posted.location.startswith("/authorize/resume?interaction=")

    resumed = await fetch(http, "GET", f"{stack.authorize}{posted.location}")
    assert resumed.status == 303
    assert resumed.location.startswith("/consent?interaction=")
    assert "Set-Cookie" not in resumed.headers
    assert session_cookie(http, stack) == signed_in_cookie


async def test_a_resumed_request_belongs_to_the_first_browser_that_resumes_it(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    posted = await fetch(
        http, "POST", f"{stack.authorize}/authorize", data=code_request(s.client, s.scope)
    )
    first = await fetch(http, "GET", f"{stack.authorize}{posted.location}")
    assert first.status == 303
    assert first.location.startswith("/login?interaction=")

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        second = await fetch(other, "GET", f"{stack.authorize}{posted.location}")
        unknown = await fetch(other, "GET", f"{stack.authorize}/authorize/resume?interaction=x")
    assert_error_page(second, EXPIRED)
    assert_error_page(unknown, EXPIRED)


async def test_a_consent_form_that_is_not_utf8_is_an_error_page(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    at = await to_consent(http, stack, redis)
    body = f"interaction={at.interaction}&csrf_token={at.csrf}&decision=approve&scope=%FF"
    answer = await fetch(
        http,
        "POST",
        f"{stack.authorize}/consent",
        data=body.encode() + b"\xff",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error_page(answer, "The request body is not valid UTF-8.")
