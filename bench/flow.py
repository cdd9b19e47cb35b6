"""The whole browser-less flow, as a browser would make it: /authorize → sign in →
approve → code exchange, each step's answer checked. Counted in completed flows per second."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import aiohttp

from bench.fixtures import PASSWORD, REDIRECT_URI, SCOPE, VERIFIER, Registered
from shared.security import pkce


class _FormFields(HTMLParser):
    """The name → value of every <input> on a page (the hidden CSRF and interaction)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "input" and found.get("name") and found.get("value") is not None:
            self.fields[str(found["name"])] = str(found["value"])


def _fields(page: str) -> dict[str, str]:
    parser = _FormFields()
    parser.feed(page)
    return parser.fields


class FlowFailed(Exception):
    pass


async def _step(response: aiohttp.ClientResponse, status: int, what: str) -> str:
    body = await response.text()
    if response.status != status:
        raise FlowFailed(f"{what}: {response.status} {body[:200]}")
    return body


async def one_flow(
    session: aiohttp.ClientSession, authorize: str, token: str, app: Registered, username: str
) -> None:
    query = {
        "response_type": "code",
        "client_id": app.client.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "state": "bench",
        "code_challenge": pkce.s256(VERIFIER),
        "code_challenge_method": "S256",
    }
    async with session.get(f"{authorize}/authorize", params=query, allow_redirects=False) as r:
        await _step(r, 303, "authorize")
        login = r.headers["Location"]
    async with session.get(f"{authorize}{login}") as r:
        form = _fields(await _step(r, 200, "login page"))
    form |= {"username": username, "password": PASSWORD}
    async with session.post(f"{authorize}/login", data=form, allow_redirects=False) as r:
        await _step(r, 303, "sign in")
        consent = r.headers["Location"]
    async with session.get(f"{authorize}{consent}") as r:
        form = _fields(await _step(r, 200, "approval page"))
    form |= {"decision": "approve", "scope": SCOPE}
    async with session.post(f"{authorize}/consent", data=form, allow_redirects=False) as r:
        await _step(r, 303, "approve")
        back = parse_qs(urlsplit(r.headers["Location"]).query)
    exchange = {
        "grant_type": "authorization_code",
        "code": back["code"][0],
        "redirect_uri": REDIRECT_URI,
        "code_verifier": VERIFIER,
    }
    headers = {"Authorization": app.basic_auth}
    async with session.post(f"{token}/token", data=exchange, headers=headers) as r:
        if '"access_token"' not in await _step(r, 200, "code exchange"):
            raise FlowFailed("code exchange: no access_token")


@dataclass(frozen=True)
class FlowResult:
    flows_per_s: float
    completed: int
    failed: int
    first_failure: str


async def run(
    authorize: str, token: str, app: Registered, usernames: list[str], seconds: float
) -> FlowResult:
    """One person per worker, each signing in afresh in a new browser session per flow."""
    deadline = time.monotonic() + seconds
    completed = failed = 0
    first_failure = ""

    async def worker(username: str) -> None:
        nonlocal completed, failed, first_failure
        while time.monotonic() < deadline:
            jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
            async with aiohttp.ClientSession(cookie_jar=jar) as session:
                try:
                    await one_flow(session, authorize, token, app, username)
                    completed += 1
                except (FlowFailed, aiohttp.ClientError, KeyError) as exc:
                    failed += 1
                    first_failure = first_failure or repr(exc)

    started = time.monotonic()
    await asyncio.gather(*(worker(name) for name in usernames))
    elapsed = time.monotonic() - started
    return FlowResult(completed / elapsed, completed, failed, first_failure)
