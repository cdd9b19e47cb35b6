"""Driving OAuth over HTTP as its parties would: a browser through /authorize, sign-in
and approval; a client at /token and /revoke; a resource server at /introspect and with
the JWK Set."""

from __future__ import annotations

import re
import secrets
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from shared.security import pkce
from shared.storage import families
from tests.records import PASSWORD, REDIRECT_URI, Registered, Setup
from tests.replies import (
    Reply,
    basic_auth_for,
    cors_preflight,
    csrf_token,
    post_form,
    query_of,
)
from tests.stack import ADMIN_TOKEN, Stack


def new_request_id() -> str:
    """An X-Request-ID of a form Tessera keeps (32 hex digits, as ingress-nginx makes)."""
    return secrets.token_hex(16)


def grant_family(value: str) -> str:
    """The grant family a code or token was issued in (it must have one)."""
    family = families.family_of(value)
    assert family is not None, value
    return family


def new_verifier() -> str:
    return secrets.token_urlsafe(48)


def s256(verifier: str) -> str:
    return pkce.s256(verifier)


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
    decided = await sign_in_and_decide(http, stack, params, username, decision, tick)
    back = decided.headers["Location"]
    assert back.startswith(params.get("redirect_uri", REDIRECT_URI))
    return query_of(back)


async def sign_in_and_decide(
    http: aiohttp.ClientSession,
    stack: Stack,
    params: dict[str, str],
    username: str,
    decision: str = "approve",
    tick: list[str] | None = None,
) -> aiohttp.ClientResponse:
    """/authorize, the login page when the browser is not signed in yet, and the approval
    page; returns the decision's response, the redirect back to the client."""
    started = await start_authorization(http, stack, params)
    assert started.status == 303, started.status
    location = started.headers["Location"]
    if location.startswith("/login"):
        signed_in = await sign_in(http, stack, location, username, PASSWORD)
        assert signed_in.status == 303
        location = signed_in.headers["Location"]
    assert location.startswith("/consent?"), location
    decided = await decide(http, stack, location, decision, tick)
    assert decided.status == 303
    return decided


async def obtain_code(
    http: aiohttp.ClientSession, stack: Stack, setup: Setup, **extra: str | None
) -> str:
    """Walk /authorize through login and approval for ``setup``; returns the code.
    ``extra`` changes the authorization request; a value of None leaves that parameter out."""
    params = code_request(setup.client, setup.scope)
    for name, value in extra.items():
        if value is None:
            del params[name]
        else:
            params[name] = value
    back = await authorize(http, stack, params, setup.user)
    assert "code" in back, back
    return back["code"]


def code_request(client: Registered, scope: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": secrets.token_urlsafe(8),
        **extra,
    }


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
    return await token_request(http, stack, client, form, auth=auth)


async def introspect(
    http: aiohttp.ClientSession, stack: Stack, caller: Registered, token: str
) -> Reply:
    return await post_form(
        http, f"{stack.introspect}/introspect", {"token": token}, basic_auth_for(caller)
    )


async def token_request(
    http: aiohttp.ClientSession,
    stack: Stack,
    client: Registered,
    form: dict[str, str],
    *,
    auth: str = "basic",
) -> Reply:
    """POST /token with ``form``, authenticating as ``auth`` says (``basic``, ``post``,
    or ``none`` for a public client's client_id alone)."""
    form = dict(form)
    basic = None
    if auth == "basic":
        basic = basic_auth_for(client)
    elif auth == "post":
        form |= {"client_id": client.client_id, "client_secret": client.secret or ""}
    else:
        form["client_id"] = client.client_id
    return await post_form(http, f"{stack.token}/token", form, basic)


async def refresh(
    http: aiohttp.ClientSession,
    stack: Stack,
    client: Registered,
    refresh_token: str,
    **extra: str,
) -> Reply:
    auth = "none" if client.client.is_public else "basic"
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    return await token_request(http, stack, client, form, auth=auth)


async def revoke(
    http: aiohttp.ClientSession, stack: Stack, client: Registered, token: str, **extra: str
) -> tuple[int, CIMultiDictProxy[str], str]:
    """POST /revoke (RFC 7009); status, headers and body text."""
    form = {"token": token, **extra}
    headers = None
    if client.client.is_public:
        form["client_id"] = client.client_id
    else:
        headers = basic_auth_for(client)
    async with http.post(f"{stack.revoke}", data=form, headers=headers) as r:
        return r.status, r.headers, await r.text()


async def is_active(
    http: aiohttp.ClientSession, stack: Stack, caller: Registered, token: str
) -> bool:
    reply = await introspect(http, stack, caller, token)
    assert reply.status == 200, reply.body
    return bool(reply.body["active"])


async def verify_with_jwks(
    http: aiohttp.ClientSession, stack: Stack, token: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify a JWT access token as a resource server would (RFC 9068 §4): the key picked
    by ``kid`` from the token service's JWK Set, the algorithm that key's own, issuer and
    audience the stack's. Returns the header and the claims."""
    import jwt  # only the JWT tests need it

    async with http.get(f"{stack.token}/jwks.json") as r:
        assert r.status == 200
        jwks = await r.json()
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt", header
    published = [jwk for jwk in jwks["keys"] if jwk["kid"] == header.get("kid")]
    assert len(published) == 1, (header, jwks)
    claims = jwt.decode(
        token,
        jwt.PyJWK(published[0]).key,
        algorithms=[published[0]["alg"]],
        issuer=stack.issuer,
        audience=stack.issuer,
        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"]},
    )
    return header, claims


async def origin_allowed(http: aiohttp.ClientSession, stack: Stack, origin: str) -> bool:
    """Whether the token and authorize services both let a browser app on ``origin``
    call them now."""
    for url in (f"{stack.token}/token", stack.metadata):
        status, headers = await cors_preflight(http, url, origin, headers=None)
        if status != 204 or headers.get("Access-Control-Allow-Origin") != origin:
            return False
    return True


# The admin API's credential (tests/conftest.py gives the session stack ADMIN_TOKEN).
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def admin_json(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> tuple[int, Any]:
    """A call to the admin API (README "Admin API") with the bootstrap credential unless
    ``headers`` name another: status and JSON body (None when empty); an answer is never
    cached, and an error is problem details (RFC 9457)."""
    async with http.request(method, url, headers=headers or ADMIN, **kwargs) as r:
        body = await r.read()
        assert r.headers.get("Cache-Control") in (None, "no-store")
        if r.status >= 400:
            assert r.headers["Content-Type"] == "application/problem+json", r.headers
        return r.status, orjson.loads(body) if body else None


async def live_tokens(http: aiohttp.ClientSession, stack: Stack, **of: str) -> list[dict[str, Any]]:
    """The live access and refresh tokens token management lists (``GET /v1/tokens``)
    of a ``client`` and/or a ``user``: what the grants so far have left issued."""
    params = {"client_id": of["client"]} if "client" in of else {}
    params |= {"username": of["user"]} if "user" in of else {}
    status, body = await admin_json(http, "GET", f"{stack.admin}/v1/tokens", params=params)
    assert status == 200, body
    assert body["next_cursor"] is None  # every test's tokens fit on one page
    tokens: list[dict[str, Any]] = body["items"]
    return tokens
