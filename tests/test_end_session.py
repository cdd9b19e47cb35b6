"""RP-Initiated Logout 1.0 (``/end_session``): a client sends the browser to sign out,
with an ID token as hint (§2), and gets it back at a post-logout redirect URI it
registered (§3). The ID tokens come from the real code flow with the ``openid`` scope;
the attacks are tried and seen to fail: another client's hint, an access token or an
unsigned token as the hint, a return address nobody registered, a sign-out without the
person's confirmation. The confirmation page is also seen and used in Chromium."""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import aiohttp
import jwt
from aiohttp import web
from playwright.async_api import Page, async_playwright, expect
from redis.asyncio import Redis

from devtools.local_processes import free_port
from services.authorize.end_session import END_SESSION_PATH, NOT_SENT_BACK
from shared.domain.openid import OPENID
from shared.security import crypto
from shared.storage import keys
from tests.chromium import launch_chromium
from tests.command_line import tessera
from tests.flows import code_request, exchange, obtain_code
from tests.records import PASSWORD, REDIRECT_URI, Setup, make_client, make_user, unique
from tests.relying_parties import (
    POST_LOGOUT_URI,
    claims_of,
    end_session,
    id_token_of,
    openid_setup,
    signed_in_as,
)
from tests.replies import SESSION_COOKIE, Answer, csrf_token, fetch, page_message, query_of
from tests.secrets_ledger import SECRETS_USED
from tests.stack import Stack

CHROME_ERROR_PAGE = re.compile(r"^chrome-error://")


def assert_returned(answer: Answer, state: str | None) -> None:
    """Sent back to POST_LOGOUT_URI (§3), with ``state``, the session cookie cleared."""
    assert answer.status == 303, answer.text
    assert answer.location.split("?")[0] == POST_LOGOUT_URI
    assert query_of(answer.location) == ({"state": state} if state else {})
    assert answer.cookies()["tessera_session"].value == ""


def assert_not_returned(answer: Answer) -> None:
    """The signed-out page, saying the client's return address was not used."""
    assert answer.status == 200, answer.text
    assert "Location" not in answer.headers
    assert "You have been signed out" in answer.text
    assert NOT_SENT_BACK in answer.text


def assert_error_page(answer: Answer, message: str) -> None:
    assert answer.status == 400
    assert "Location" not in answer.headers
    assert page_message(answer.text) == message
    assert "<code>invalid_request</code>" in answer.text


async def confirm(http: aiohttp.ClientSession, stack: Stack, page: Answer) -> Answer:
    """Submit the confirmation page's form as the browser would: its hidden fields."""
    assert page.status == 200, page.text
    assert "<h1>Sign out?</h1>" in page.text
    fields = dict(
        (name, value.replace("&amp;", "&"))
        for name, value in _hidden_fields(page.text)
        if name != "csrf_token"
    )
    form = {"csrf_token": csrf_token(page.text), **fields}
    return await fetch(http, "POST", f"{stack.authorize}{END_SESSION_PATH}", data=form)


def _hidden_fields(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html)


def _base64url_json(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


def unsigned(token: str) -> str:
    """``token``'s claims under ``alg: none`` (RFC 7519 §6), without a signature."""
    header = {"alg": "none", "typ": "JWT"}
    forged = f"{_base64url_json(header)}.{_base64url_json(claims_of(token))}."
    SECRETS_USED.add(forged)
    return forged


# --- with a hint naming this session: signed out at once ----------------------------------


async def test_a_valid_hint_signs_out_at_once_and_returns_with_state(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    setup = await openid_setup(redis)
    id_token = await id_token_of(http, stack, setup)
    assert await signed_in_as(http, stack) == setup.user

    answer = await end_session(
        http,
        stack,
        id_token_hint=id_token,
        post_logout_redirect_uri=POST_LOGOUT_URI,
        state="af0ifjsldkj",
        ui_locales="de fr",
        logout_hint=setup.user,
    )

    assert_returned(answer, "af0ifjsldkj")
    assert await signed_in_as(http, stack) is None
    # The old session is gone: the next request asks the person to sign in again.
    again = await fetch(
        http,
        "GET",
        f"{stack.authorize}/authorize?{urlencode(code_request(setup.client, setup.scope))}",
    )
    assert again.location.startswith("/login?")


async def test_the_client_may_post_and_name_itself_too(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """§2: POST as well as GET; client_id with the hint, agreeing with it; the redirect
    URI's own query kept, state added to it."""
    with_query = f"{POST_LOGOUT_URI}?from=tessera"
    setup = await openid_setup(redis, post_logout_redirect_uris=[POST_LOGOUT_URI, with_query])
    id_token = await id_token_of(http, stack, setup)

    answer = await end_session(
        http,
        stack,
        "POST",
        id_token_hint=id_token,
        client_id=setup.client.client_id,
        post_logout_redirect_uri=with_query,
        state="xyz",
    )

    assert answer.status == 303
    assert answer.location == f"{with_query}&state=xyz"
    assert await signed_in_as(http, stack) is None


async def test_a_pairwise_clients_hint_names_the_person_as_it_sees_them(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    setup = await openid_setup(redis, subject_type="pairwise")
    id_token = await id_token_of(http, stack, setup)

    answer = await end_session(
        http, stack, id_token_hint=id_token, post_logout_redirect_uri=POST_LOGOUT_URI
    )

    assert_returned(answer, None)
    assert await signed_in_as(http, stack) is None


async def test_an_expired_hint_still_names_the_person(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """§2: the client may hold the ID token long after it expired. Not the case here
    (TESSERA_ID_TOKEN_LIFETIME is an hour), so the test signs one with the stack's key
    to be sure an expired one of Tessera's is taken."""
    setup = await openid_setup(redis)
    id_token = await id_token_of(http, stack, setup)
    assert stack.signing_keys is not None
    [key_file] = sorted(stack.signing_keys.glob("*.pem"))
    header = jwt.get_unverified_header(id_token)
    claims = {**claims_of(id_token), "iat": 1_000_000_000, "exp": 1_000_003_600}
    expired = jwt.encode(claims, key_file.read_bytes(), algorithm=header["alg"], headers=header)
    SECRETS_USED.add(expired)

    answer = await end_session(
        http, stack, id_token_hint=expired, post_logout_redirect_uri=POST_LOGOUT_URI
    )

    assert_returned(answer, None)


# --- otherwise the person is asked --------------------------------------------------------


async def test_without_a_hint_the_person_confirms_then_returns(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    setup = await openid_setup(redis)
    await id_token_of(http, stack, setup)

    page = await end_session(
        http,
        stack,
        client_id=setup.client.client_id,
        post_logout_redirect_uri=POST_LOGOUT_URI,
        state="a b&c=d",
    )

    assert page.status == 200
    assert f"Signed in as <strong>{setup.user}</strong>" in page.text
    assert f'you go back to <strong class="client-name">{setup.client.client.name}' in page.text
    assert await signed_in_as(http, stack) == setup.user  # nothing happened yet
    assert_returned(await confirm(http, stack, page), "a b&c=d")
    assert await signed_in_as(http, stack) is None


async def test_a_hint_naming_someone_else_or_an_older_session_asks_first(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    setup = await openid_setup(redis)
    old_session_token = await id_token_of(http, stack, setup)
    assert_returned(
        await end_session(
            http, stack, id_token_hint=old_session_token, post_logout_redirect_uri=POST_LOGOUT_URI
        ),
        None,
    )
    # Signed in again: a new session (sid), the same person (sub).
    new_session_token = await id_token_of(http, stack, setup)
    assert claims_of(new_session_token)["sub"] == claims_of(old_session_token)["sub"]
    assert claims_of(new_session_token)["sid"] != claims_of(old_session_token)["sid"]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        someone_else = await id_token_of(
            other, stack, Setup(setup.scope, await make_user(redis), setup.client)
        )

    for hint in (old_session_token, someone_else):
        page = await end_session(
            http, stack, id_token_hint=hint, post_logout_redirect_uri=POST_LOGOUT_URI
        )
        assert page.status == 200
        assert "<h1>Sign out?</h1>" in page.text
        # The hint is not carried on: the form names the client it identified.
        assert dict(_hidden_fields(page.text))["client_id"] == setup.client.client_id
        assert hint not in page.text
        assert await signed_in_as(http, stack) == setup.user

    assert_returned(await confirm(http, stack, page), None)
    assert await signed_in_as(http, stack) is None


async def test_the_confirmation_counts_only_with_the_sessions_csrf_token(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """A site that posts the confirmation form itself cannot know the token."""
    setup = await openid_setup(redis)
    await id_token_of(http, stack, setup)
    form = {"client_id": setup.client.client_id, "post_logout_redirect_uri": POST_LOGOUT_URI}

    for csrf in ("", "guessed-" + "x" * 40):
        answer = await fetch(
            http, "POST", f"{stack.authorize}{END_SESSION_PATH}", data={**form, "csrf_token": csrf}
        )
        if csrf:
            assert answer.status == 403
            assert "Location" not in answer.headers
        else:  # an empty field is no field: the client's own POST, which asks first
            assert "<h1>Sign out?</h1>" in answer.text
        assert await signed_in_as(http, stack) == setup.user


async def test_nobody_signed_in_goes_straight_back(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    setup = await openid_setup(redis)
    answer = await end_session(
        http,
        stack,
        client_id=setup.client.client_id,
        post_logout_redirect_uri=POST_LOGOUT_URI,
        state="s",
    )
    assert answer.status == 303
    assert answer.location == f"{POST_LOGOUT_URI}?state=s"


# --- what is refused ----------------------------------------------------------------------


async def test_an_unregistered_post_logout_redirect_uri_is_never_redirected_to(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """§3.1: exact match with one the client registered; otherwise the person signs out
    and stays on Tessera's page: not a sign-in redirect URI, not a near miss, not another
    client's, not one without a client named."""
    setup = await openid_setup(redis)
    await make_client(redis, [OPENID], post_logout_redirect_uris=["https://evil.example.com/bye"])
    for uri, by_hint, by_id in (
        (REDIRECT_URI, True, False),
        (POST_LOGOUT_URI + "/", True, False),
        (POST_LOGOUT_URI.upper(), False, True),
        (POST_LOGOUT_URI + "?x=1", True, True),
        ("https://evil.example.com/bye", True, False),
        (POST_LOGOUT_URI, False, False),  # no client named at all
    ):
        id_token = await id_token_of(http, stack, setup)
        params = {"post_logout_redirect_uri": uri, "state": "s"}
        if by_hint:
            params["id_token_hint"] = id_token
        if by_id:
            params["client_id"] = setup.client.client_id
        answer = await end_session(http, stack, **params)
        if not by_hint:  # the person is asked first
            answer = await confirm(http, stack, answer)
        assert_not_returned(answer)
        assert await signed_in_as(http, stack) is None


async def test_a_disabled_or_unknown_client_is_not_returned_to(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    setup = await openid_setup(redis)
    id_token = await id_token_of(http, stack, setup)
    run = await tessera(stack, "client", "disable", setup.client.client_id)
    assert run.status == 0, run.stderr

    page = await end_session(
        http, stack, id_token_hint=id_token, post_logout_redirect_uri=POST_LOGOUT_URI
    )
    assert_not_returned(await confirm(http, stack, page))

    await id_token_of(http, stack, await openid_setup(redis))
    page = await end_session(
        http, stack, client_id=unique("no-such-client"), post_logout_redirect_uri=POST_LOGOUT_URI
    )
    assert_not_returned(await confirm(http, stack, page))


async def test_a_hint_issued_to_client_a_with_client_id_b_is_refused(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """§2: client_id must be the hint's audience. B registered the same return address:
    B's knowledge of a hint A received must not sign anyone out, nor send them to B."""
    a = await openid_setup(redis)
    b = await make_client(redis, [OPENID], post_logout_redirect_uris=[POST_LOGOUT_URI])
    id_token = await id_token_of(http, stack, a)

    answer = await end_session(
        http,
        stack,
        id_token_hint=id_token,
        client_id=b.client_id,
        post_logout_redirect_uri=POST_LOGOUT_URI,
    )

    assert_error_page(answer, "The id_token_hint was not issued to this application.")
    assert await signed_in_as(http, stack) == a.user


async def test_an_access_token_or_a_forged_token_as_hint_is_refused(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """Never a redirect, never a sign-out: a JWT access token of the same client and
    person (typ at+jwt), the ID token's claims unsigned (alg none), and its signature
    broken."""
    setup = await openid_setup(redis, jwt_access_tokens=True)
    code = await obtain_code(http, stack, setup)
    reply = await exchange(http, stack, setup.client, code)
    assert reply.status == 200, reply.body
    access_token, id_token = reply.body["access_token"], reply.body["id_token"]
    SECRETS_USED.add(id_token)
    assert access_token.count(".") == 2  # a JWT
    header, payload, signature = id_token.split(".")
    broken = f"{header}.{payload}.{signature[:-4]}AAAA"
    SECRETS_USED.add(broken)

    for hint in (access_token, unsigned(id_token), broken, "not-a-jwt"):
        answer = await end_session(
            http,
            stack,
            id_token_hint=hint,
            client_id=setup.client.client_id,
            post_logout_redirect_uri=POST_LOGOUT_URI,
        )
        assert_error_page(answer, "The id_token_hint is not a valid ID token of this server.")
        assert await signed_in_as(http, stack) == setup.user


async def test_malformed_requests_get_the_error_page(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    setup = await openid_setup(redis)
    await id_token_of(http, stack, setup)
    url = f"{stack.authorize}{END_SESSION_PATH}"
    newline = urlencode({"state": "new\nline"})
    repeated = f"{url}?client_id={setup.client.client_id}&client_id=x"
    for answer in (
        await fetch(http, "GET", repeated),
        await fetch(http, "GET", f"{url}?{urlencode({'state': 'a' * 2000})}"),
        await fetch(http, "GET", f"{url}?{newline}"),
    ):
        assert answer.status == 400
        assert "Location" not in answer.headers
    assert await signed_in_as(http, stack) == setup.user


# --- the command line registers what it needs ---------------------------------------------


async def test_the_cli_registers_the_logout_settings(stack: Stack, redis: Redis) -> None:
    run = await tessera(
        stack,
        "client", "create", "--name", unique("CLI RP"), "--type", "confidential",
        "--redirect-uri", REDIRECT_URI, "--grant", "authorization_code", "--scope", OPENID,
        "--post-logout-redirect-uri", POST_LOGOUT_URI,
        "--post-logout-redirect-uri", "com.example.app:/signed-out",
        "--backchannel-logout-uri", "https://app.example.com/backchannel-logout",
        "--subject-type", "pairwise", "--sector-identifier", "example.com",
        "-o", "json",
    )  # fmt: skip
    assert run.status == 0, run.stderr
    created = run.json()
    SECRETS_USED.add(created["client_secret"])
    assert created["post_logout_redirect_uris"] == [POST_LOGOUT_URI, "com.example.app:/signed-out"]
    assert created["backchannel_logout_uri"] == "https://app.example.com/backchannel-logout"
    assert (created["subject_type"], created["sector_identifier"]) == ("pairwise", "example.com")

    for bad, message in (
        (["--backchannel-logout-uri", "http://app.example.com/bc"], "must use https"),
        (["--post-logout-redirect-uri", "https://app.example.com/x#f"], "fragment"),
        (["--subject-type", "public", "--sector-identifier", "example.com"], "pairwise"),
    ):
        run = await tessera(
            stack,
            "client", "create", "--name", unique("CLI RP"), "--type", "public",
            "--redirect-uri", REDIRECT_URI, "--grant", "authorization_code", "--scope", OPENID,
            *bad,
        )  # fmt: skip
        assert run.status == 1
        assert message in run.stderr, run.stderr


# --- in the browser -----------------------------------------------------------------------


async def sign_in_in_chromium(page: Page, stack: Stack, setup: Setup) -> str:
    """The code flow in the browser; the ID token its code is exchanged for."""
    params = code_request(setup.client, setup.scope)
    await page.goto(f"{stack.authorize}/authorize?{urlencode(params)}")
    if await page.get_by_label("Username").count():
        await page.get_by_label("Username").fill(setup.user)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
    async with page.expect_request(lambda r: r.url.startswith(REDIRECT_URI)) as back:
        await page.get_by_role("button", name="Approve").click()
    # The client is not on this machine: wait for the browser's error page, so that the
    # next navigation is not cut short by this one.
    await expect(page).to_have_url(CHROME_ERROR_PAGE)
    async with aiohttp.ClientSession() as client_app:
        code = query_of((await back.value).url)["code"]
        reply = await exchange(client_app, stack, setup.client, code)
    assert reply.status == 200, reply.body
    SECRETS_USED.add(reply.body["id_token"])
    return str(reply.body["id_token"])


async def session_key_of(page: Page, stack: Stack) -> str:
    """The Redis key of the browser's signed-in session (under its cookie's digest)."""
    cookies = await page.context.cookies(stack.authorize)
    [session_id] = [c.get("value", "") for c in cookies if c.get("name") == SESSION_COOKIE]
    SECRETS_USED.add(session_id)
    return keys.session(crypto.digest(session_id))


@asynccontextmanager
async def relying_party_page(stack: Stack, form: dict[str, str]) -> AsyncIterator[str]:
    """A page of the client's own site (another site: localhost, where Tessera is on
    127.0.0.1) whose button posts ``form`` to /end_session, as §2 allows; its URL."""
    fields = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(value)}">'
        for name, value in form.items()
    )
    body = (
        f'<!doctype html><form method="post" action="{stack.authorize}{END_SESSION_PATH}">'
        f"{fields}<button>Sign out</button></form>"
    )

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "localhost", port).start()
    try:
        yield f"http://localhost:{port}/"
    finally:
        await runner.cleanup()


async def test_in_chromium_a_post_from_the_clients_site_and_a_confirmation(
    stack: Stack, redis: Redis
) -> None:
    """The client's site posts the request (its cookie is SameSite=Lax, so the browser
    sends it on the redirect to GET that follows, not with the cross-site POST, and that
    GET leaves the hint out, so the person is asked); then, without a hint at all, the
    person sees the question and answers it."""
    setup = await openid_setup(redis)
    name = setup.client.client.name
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        try:
            page = await browser.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: dialogs.append(dialog.message))
            id_token = await sign_in_in_chromium(page, stack, setup)
            session = await session_key_of(page, stack)
            assert await redis.exists(session)

            form = {
                "id_token_hint": id_token,
                "post_logout_redirect_uri": POST_LOGOUT_URI,
                "state": "p1",
            }
            async with relying_party_page(stack, form) as site:
                await page.goto(site)
                await page.get_by_role("button", name="Sign out").click()  # the client's form
                # On as a GET that carries the cookie, but not the hint: an ID token in a
                # URL would stay in access logs and the history. So the person is asked.
                await expect(page.get_by_role("heading", name="Sign out?")).to_be_visible()
                assert id_token not in page.url and "id_token_hint" not in page.url
                async with page.expect_request(lambda r: r.url.startswith(POST_LOGOUT_URI)) as to:
                    await page.get_by_role("button", name="Sign out").click()
                assert (await to.value).url == f"{POST_LOGOUT_URI}?state=p1"
                await expect(page).to_have_url(CHROME_ERROR_PAGE)
            assert not await redis.exists(session)  # ended, not merely forgotten here

            await sign_in_in_chromium(page, stack, setup)
            session = await session_key_of(page, stack)
            params = {
                "client_id": setup.client.client_id,
                "post_logout_redirect_uri": POST_LOGOUT_URI,
                "state": "x1",
            }
            await page.goto(f"{stack.authorize}{END_SESSION_PATH}?{urlencode(params)}")
            await expect(page.get_by_role("heading", name="Sign out?")).to_be_visible()
            await expect(page.get_by_text(f"Signed in as {setup.user}")).to_be_visible()
            await expect(page.get_by_text(f"you go back to {name}")).to_be_visible()
            async with page.expect_request(lambda r: r.url.startswith(POST_LOGOUT_URI)) as to:
                await page.get_by_role("button", name="Sign out").click()
            assert (await to.value).url == f"{POST_LOGOUT_URI}?state=x1"
            await expect(page).to_have_url(CHROME_ERROR_PAGE)

            assert not await redis.exists(session)
            await page.goto(f"{stack.authorize}/logout")
            await expect(page.get_by_role("heading", name="Not signed in")).to_be_visible()
            assert dialogs == []
        finally:
            await browser.close()
