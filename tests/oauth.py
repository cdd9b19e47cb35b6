"""Test helpers: register what a test needs, and walk the OAuth flow over HTTP."""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import aiohttp
from redis.asyncio import Redis

from shared import clients, pkce, scopes, users
from shared.clients import Client

REDIRECT_URI = "https://app.example.com/callback"
PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Stack:
    redis_url: str
    issuer: str
    authorize: str
    token: str
    introspect: str


@dataclass(frozen=True)
class Registered:
    client: Client
    secret: str | None

    @property
    def client_id(self) -> str:
        return self.client.client_id


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Any
    body: dict[str, Any]


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


async def make_scope(redis: Redis, description: str = "Read things") -> str:
    name = unique("read")
    await scopes.add(redis, name, description)
    return name


async def make_user(redis: Redis) -> str:
    username = unique("alice")
    await users.add(redis, username, PASSWORD)
    return username


async def make_client(
    redis: Redis,
    scope_names: list[str],
    *,
    client_type: str = "confidential",
    redirect_uris: list[str] | None = None,
    **options: Any,
) -> Registered:
    client, secret = await clients.create(
        redis,
        name=options.pop("name", unique("App")),
        client_type=client_type,
        redirect_uris=redirect_uris if redirect_uris is not None else [REDIRECT_URI],
        grants=["authorization_code"],
        scope_names=scope_names,
        **options,
    )
    return Registered(client, secret)


def new_verifier() -> str:
    return secrets.token_urlsafe(48)


def s256(verifier: str) -> str:
    return pkce.s256(verifier)


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


async def start_authorization(
    http: aiohttp.ClientSession, stack: Stack, params: dict[str, str]
) -> aiohttp.ClientResponse:
    async with http.get(f"{stack.authorize}/authorize", params=params, allow_redirects=False) as r:
        await r.read()
        return r


async def sign_in(
    http: aiohttp.ClientSession, stack: Stack, login_location: str, username: str, password: str
) -> aiohttp.ClientResponse:
    """Open the login page at ``login_location`` and submit the credentials."""
    interaction = query_of(login_location)["interaction"]
    async with http.get(f"{stack.authorize}{login_location}") as page:
        assert page.status == 200
        csrf = csrf_token(await page.text())
    async with http.post(
        f"{stack.authorize}/login",
        data={
            "interaction": interaction,
            "csrf_token": csrf,
            "username": username,
            "password": password,
        },
        allow_redirects=False,
    ) as r:
        await r.read()
        return r


async def decide(
    http: aiohttp.ClientSession,
    stack: Stack,
    consent_location: str,
    decision: str = "approve",
    tick: list[str] | None = None,
) -> aiohttp.ClientResponse:
    """Open the approval page and submit it, ticking ``tick`` (default: every scope)."""
    interaction = query_of(consent_location)["interaction"]
    async with http.get(f"{stack.authorize}{consent_location}") as page:
        assert page.status == 200
        html = await page.text()
    if tick is None:
        tick = re.findall(r'name="scope" value="([^"]+)"', html)
    form = [("interaction", interaction), ("csrf_token", csrf_token(html)), ("decision", decision)]
    form += [("scope", name) for name in tick]
    async with http.post(f"{stack.authorize}/consent", data=form, allow_redirects=False) as r:
        await r.read()
        return r


async def authorize(
    http: aiohttp.ClientSession,
    stack: Stack,
    params: dict[str, str],
    username: str,
    *,
    decision: str = "approve",
    tick: list[str] | None = None,
) -> dict[str, str]:
    """The whole browser side; returns the query of the redirect back to the client."""
    started = await start_authorization(http, stack, params)
    assert started.status == 303, started.status
    location = started.headers["Location"]
    if location.startswith("/login"):
        signed_in = await sign_in(http, stack, location, username, PASSWORD)
        assert signed_in.status == 303
        location = signed_in.headers["Location"]
    assert location.startswith("/consent"), location
    decided = await decide(http, stack, location, decision, tick)
    assert decided.status == 303
    back = decided.headers["Location"]
    assert back.startswith(params.get("redirect_uri", REDIRECT_URI))
    return query_of(back)


def code_request(client: Registered, scope: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": secrets.token_urlsafe(8),
        **extra,
    }


def basic_auth(client_id: str, secret: str) -> dict[str, str]:
    """client_secret_basic: both parts form-urlencoded, then Base64 (RFC 6749 §2.3.1)."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


async def post_form(
    http: aiohttp.ClientSession,
    url: str,
    form: dict[str, str] | list[tuple[str, str]],
    headers: dict[str, str] | None = None,
) -> Reply:
    async with http.post(url, data=form, headers=headers, allow_redirects=False) as r:
        body = await r.json(content_type=None)
        return Reply(r.status, r.headers, body)


async def exchange(
    http: aiohttp.ClientSession,
    stack: Stack,
    client: Registered,
    code: str,
    *,
    auth: str = "basic",
    redirect_uri: str | None = REDIRECT_URI,
    **extra: str,
) -> Reply:
    """POST /token with grant_type=authorization_code, authenticating as ``auth`` says
    (``basic``, ``post`` or ``none``); ``redirect_uri=None`` leaves the parameter out."""
    form = {"grant_type": "authorization_code", "code": code, **extra}
    if redirect_uri is not None:
        form["redirect_uri"] = redirect_uri
    basic = None
    if auth == "basic":
        assert client.secret
        basic = basic_auth(client.client_id, client.secret)
    elif auth == "post":
        form |= {"client_id": client.client_id, "client_secret": client.secret or ""}
    else:
        form["client_id"] = client.client_id
    return await post_form(http, f"{stack.token}/token", form, basic)


async def introspect(
    http: aiohttp.ClientSession, stack: Stack, caller: Registered, token: str
) -> Reply:
    assert caller.secret
    return await post_form(
        http,
        f"{stack.introspect}/introspect",
        {"token": token},
        basic_auth(caller.client_id, caller.secret),
    )
