"""Signing in to a client with OpenID Connect (Core 1.0 §3.1) in a real browser: the
person signs in and approves in headless Chromium, the client redeems the code, and a
relying party's libraries validate every ID token (``tests/openid.py``)."""

from __future__ import annotations

import asyncio
import secrets
import time
from urllib.parse import urlencode

import aiohttp
import pytest
from playwright.async_api import Browser, expect
from playwright.async_api import Error as PlaywrightError
from redis.asyncio import Redis

from tests.browsing import Tab, approve_and_land, open_login_page, open_tab, sign_in
from tests.flows import code_request, exchange, new_verifier, refresh, s256
from tests.openid import discovery, validated_id_token
from tests.records import REDIRECT_URI, Registered, make_client, make_user
from tests.replies import query_of
from tests.stack import Stack

pytestmark = pytest.mark.asyncio(loop_scope="module")


def openid_request(client: Registered, **extra: str) -> tuple[dict[str, str], str]:
    """An authentication request with a fresh nonce and PKCE; the request and verifier."""
    verifier = new_verifier()
    params = code_request(
        client,
        "openid profile",
        nonce=secrets.token_urlsafe(16),
        code_challenge=s256(verifier),
        code_challenge_method="S256",
        **extra,
    )
    return params, verifier


async def sign_in_with_openid(
    tab: Tab, stack: Stack, http: aiohttp.ClientSession, client: Registered, user: str, **extra: str
) -> tuple[dict[str, object], dict[str, object]]:
    """The whole sign-in in the browser, then the code's redemption; the token response
    and the validated ID token's claims."""
    params, verifier = openid_request(client, **extra)
    await open_login_page(tab.page, stack, params)
    await sign_in(tab.page, user)
    back = await approve_and_land(tab.page, stack)
    assert back["state"] == params["state"]
    reply = await exchange(http, stack, client, back["code"], code_verifier=verifier)
    assert reply.status == 200, reply.body
    _, claims = await validated_id_token(
        http,
        stack,
        reply.body["id_token"],
        client_id=client.client_id,
        nonce=params["nonce"],
        access_token=reply.body["access_token"],
    )
    return reply.body, claims


async def test_a_sign_in_returns_an_id_token_a_relying_party_accepts_and_refreshes_it(
    stack: Stack, browser_redis: Redis, browser_http: aiohttp.ClientSession, tab: Tab
) -> None:
    http = browser_http
    user = await make_user(browser_redis)
    client = await make_client(browser_redis, ["openid", "profile"], refresh_count=2)
    config = await discovery(http, stack)
    assert config["authorization_endpoint"] == f"{stack.authorize}/authorize"
    before = int(time.time())

    body, claims = await sign_in_with_openid(tab, stack, http, client, user)

    assert claims["iss"] == stack.issuer and claims["aud"] == client.client_id
    assert claims["azp"] == client.client_id
    assert before - 1 <= claims["auth_time"] <= int(time.time())  # type: ignore[operator]
    assert claims["amr"] == ["pwd"]  # RFC 8176 §2
    assert claims["sid"] and claims["sub"] != user  # a random id, never the username
    # Core §12.2: a refresh returns a new ID token for the same person and sign-in,
    # without the authentication request's nonce.
    refreshed = await refresh(http, stack, client, body["refresh_token"])  # type: ignore[arg-type]
    assert refreshed.status == 200, refreshed.body
    _, again = await validated_id_token(
        http,
        stack,
        refreshed.body["id_token"],
        client_id=client.client_id,
        access_token=refreshed.body["access_token"],
    )
    for name in ("sub", "auth_time", "sid", "aud", "azp"):
        assert again[name] == claims[name], name
    assert "nonce" not in again


async def test_one_person_keeps_one_sub_and_two_people_have_two(
    stack: Stack, browser_redis: Redis, browser_http: aiohttp.ClientSession, browser: Browser
) -> None:
    alice, bob = await make_user(browser_redis), await make_user(browser_redis)
    client = await make_client(browser_redis, ["openid", "profile"])
    subs = []
    for user in (alice, alice, bob):
        async with open_tab(browser) as tab:  # a browser of its own: two separate sign-ins
            _, claims = await sign_in_with_openid(tab, stack, browser_http, client, user)
            subs.append(claims["sub"])
    assert subs[0] == subs[1]
    assert subs[2] != subs[0]


async def test_pairwise_subjects_differ_per_sector_and_hold_within_one(
    stack: Stack, browser_redis: Redis, browser_http: aiohttp.ClientSession, tab: Tab
) -> None:
    """Core §8.1: one person, a sub per sector; two clients of one sector see the same."""
    user = await make_user(browser_redis)
    scope = ["openid", "profile"]
    public = await make_client(browser_redis, scope)
    north = await make_client(browser_redis, scope, subject_type="pairwise")  # app.example.com
    north_too = await make_client(
        browser_redis, scope, subject_type="pairwise", sector_identifier="app.example.com"
    )
    south = await make_client(
        browser_redis, scope, subject_type="pairwise", sector_identifier="south.example.net"
    )
    subs = {}
    for name, client in (("public", public), ("north", north), ("north_too", north_too)):
        _, claims = await sign_in_with_openid(tab, stack, browser_http, client, user)
        subs[name] = claims["sub"]
        await tab.page.context.clear_cookies()  # each a sign-in of its own
    _, claims = await sign_in_with_openid(tab, stack, browser_http, south, user)
    subs["south"] = claims["sub"]
    assert subs["north"] == subs["north_too"]
    assert len({subs["public"], subs["north"], subs["south"]}) == 3


async def test_max_age_zero_asks_a_signed_in_person_to_sign_in_again(
    stack: Stack, browser_redis: Redis, browser_http: aiohttp.ClientSession, tab: Tab
) -> None:
    user = await make_user(browser_redis)
    client = await make_client(browser_redis, ["openid", "profile"], remember_consent=True)
    _, first = await sign_in_with_openid(tab, stack, browser_http, client, user)
    await asyncio.sleep(1.1)  # so that a new sign-in has a later auth_time than the first
    # Signed in, and the approval remembered: without max_age the answer comes at once.
    params, verifier = openid_request(client, max_age="0")
    await open_login_page(tab.page, stack, params)  # max_age=0: the sign-in page again
    await expect(tab.page.get_by_label("Password")).to_be_empty()
    async with tab.page.expect_request(lambda r: r.url.startswith(REDIRECT_URI + "?")) as info:
        await sign_in(tab.page, user)
    back = query_of((await info.value).url)
    reply = await exchange(browser_http, stack, client, back["code"], code_verifier=verifier)
    _, claims = await validated_id_token(
        browser_http,
        stack,
        reply.body["id_token"],
        client_id=client.client_id,
        nonce=params["nonce"],
        access_token=reply.body["access_token"],
        max_age=0,
    )
    assert claims["auth_time"] > first["auth_time"]
    assert claims["sub"] == first["sub"]
    assert claims["sid"] == first["sid"]  # the same person, the same session


async def test_prompt_none_without_a_session_answers_login_required(
    stack: Stack, browser_redis: Redis, tab: Tab
) -> None:
    client = await make_client(browser_redis, ["openid", "profile"])
    params, _ = openid_request(client, prompt="none")
    async with tab.page.expect_request(lambda r: r.url.startswith(REDIRECT_URI + "?")) as info:
        # Straight back to the client, which is not on this machine: the navigation fails.
        with pytest.raises(PlaywrightError, match="ERR_NAME_NOT_RESOLVED"):
            await tab.page.goto(f"{stack.authorize}/authorize?{urlencode(params)}")
    back = query_of((await info.value).url)
    assert back["error"] == "login_required"  # Core §3.1.2.6, never a page
    assert back["state"] == params["state"]
