"""One request and what came back: a JSON ``Reply`` (token, introspection), an HTML
``Answer`` (the authorize service's pages and redirects), and what a test reads from them.
Every credential read here is written to the ledger (tests/secrets_ledger.py)."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import aiohttp
from aiohttp.test_utils import TestClient
from multidict import CIMultiDictProxy
from yarl import URL

from tests.records import Registered
from tests.secrets_ledger import SECRETS_USED, remember_secrets
from tests.stack import Stack

SESSION_COOKIE = "tessera_session"  # development mode (TESSERA_INSECURE_LOOPBACK=1)


@dataclass(frozen=True)
class Reply:
    """A JSON answer (from /token or /introspect)."""

    status: int
    headers: CIMultiDictProxy[str]
    body: dict[str, Any]


@dataclass(frozen=True)
class Answer:
    """An HTML answer (from the authorize service)."""

    status: int
    headers: CIMultiDictProxy[str]
    text: str

    @property
    def location(self) -> str:
        location: str = self.headers["Location"]
        return location

    def cookies(self) -> SimpleCookie:
        jar: SimpleCookie = SimpleCookie()
        for header in self.headers.getall("Set-Cookie", []):
            jar.load(header)
        return jar


def query_of(location: str) -> dict[str, str]:
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    remember_secrets(params)
    return params


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "page has no CSRF token"
    SECRETS_USED.add(match.group(1))
    return match.group(1)


def page_message(page: str) -> str:
    match = re.search(r'<p class="error" role="alert">(.*?)</p>', page, re.S)
    assert match, "the page shows no error message"
    return html.unescape(match.group(1))


def session_cookie(http: aiohttp.ClientSession, stack: Stack) -> str:
    """The session id the browser holds for the authorize service."""
    cookie = http.cookie_jar.filter_cookies(URL(stack.authorize)).get(SESSION_COOKIE)
    assert cookie is not None, "the browser holds no session cookie"
    SECRETS_USED.add(cookie.value)
    return cookie.value


async def fetch(
    http: aiohttp.ClientSession | TestClient[Any, Any], method: str, url: str | URL, **kwargs: Any
) -> Answer:
    """One request (by a browser, or a test client of a service in this process), redirects
    not followed, answered as HTML."""
    async with http.request(method, url, allow_redirects=False, **kwargs) as r:
        return Answer(r.status, r.headers, await r.text())


def basic_auth(client_id: str, secret: str) -> dict[str, str]:
    """client_secret_basic: both parts form-urlencoded, then Base64 (RFC 6749 §2.3.1)."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def basic_auth_for(client: Registered) -> dict[str, str]:
    """The Authorization header of a confidential client, with its own secret."""
    assert client.secret
    return basic_auth(client.client_id, client.secret)


async def post_form(
    http: aiohttp.ClientSession,
    url: str,
    form: dict[str, str] | list[tuple[str, str]] | str | bytes,
    headers: dict[str, str] | None = None,
) -> Reply:
    """POST a form: fields to encode, or a body already encoded (then ``headers`` says
    its Content-Type)."""
    async with http.post(url, data=form, headers=headers, allow_redirects=False) as r:
        body = await r.json(content_type=None)
        if isinstance(body, dict):
            remember_secrets(body)
        return Reply(r.status, r.headers, body)


async def post_json(
    http: aiohttp.ClientSession, url: str, body: dict[str, str], headers: dict[str, str]
) -> Reply:
    async with http.post(url, json=body, headers=headers, allow_redirects=False) as r:
        return Reply(r.status, r.headers, await r.json(content_type=None))


def fragment_of(location: str) -> dict[str, str]:
    """The parameters in the fragment of a redirect (the implicit grant, RFC 6749 §4.2.2)."""
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).fragment).items()}
    remember_secrets(params)
    return params


async def cors_preflight(
    http: aiohttp.ClientSession,
    url: str,
    origin: str,
    method: str = "POST",
    headers: str | None = "content-type",
) -> tuple[int, CIMultiDictProxy[str]]:
    """The OPTIONS request a browser sends before a cross-origin request it may not
    send unasked (Fetch standard, CORS-preflight request); status and headers."""
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        asked["Access-Control-Request-Headers"] = headers
    async with http.options(url, headers=asked) as r:
        return r.status, r.headers
