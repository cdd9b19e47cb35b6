"""An OpenID Connect client's side of signing out, for the logout tests: a client
registered for ``openid`` with a post-logout redirect URI (and, when asked, a back-channel
logout URI), its ID tokens through the real code flow, and a back-channel logout receiver:
an aiohttp server on loopback that records every request and answers as the test scripts
it (a status, or no answer at all)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import jwt
from aiohttp import web
from redis.asyncio import Redis

from devtools.local_processes import free_port
from shared.domain.openid import OPENID
from tests.flows import exchange, obtain_code
from tests.records import Setup, make_client, make_scope, make_user
from tests.replies import Answer, fetch
from tests.secrets_ledger import SECRETS_USED
from tests.stack import Stack

POST_LOGOUT_URI = "https://app.example.com/signed-out"
# Hanging: the receiver never answers (until the test ends and it stops).
HANG = "hang"


async def openid_setup(redis: Redis, **client_options: Any) -> Setup:
    """A user, and a confidential client allowed ``openid`` and a scope of its own, with
    POST_LOGOUT_URI registered; ``client_options`` go to ``make_client``."""
    scope = await make_scope(redis)
    user = await make_user(redis)
    client_options.setdefault("post_logout_redirect_uris", [POST_LOGOUT_URI])
    client = await make_client(redis, [OPENID, scope], **client_options)
    return Setup(f"{OPENID} {scope}", user, client)


async def id_token_of(http: aiohttp.ClientSession, stack: Stack, setup: Setup, **extra: str) -> str:
    """Sign in (unless signed in already) and approve in the browser ``http``, redeem the
    code at /token: the ID token it returns (OpenID Connect Core §3.1.3.3). ``extra``
    goes into the authentication request."""
    code = await obtain_code(http, stack, setup, **extra)
    reply = await exchange(http, stack, setup.client, code)
    assert reply.status == 200, reply.body
    id_token: str = reply.body["id_token"]
    SECRETS_USED.add(id_token)
    return id_token


def claims_of(token: str) -> dict[str, Any]:
    """A JWT's claims, read without checking anything (what the test itself made)."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


async def end_session(
    http: aiohttp.ClientSession, stack: Stack, method: str = "GET", **params: str
) -> Answer:
    """``/end_session`` with ``params``: in the query (GET) or as a form (POST)."""
    url = f"{stack.authorize}/end_session"
    if method == "GET":
        return await fetch(http, "GET", f"{url}?{urlencode(params)}")
    return await fetch(http, "POST", url, data=params)


async def signed_in_as(http: aiohttp.ClientSession, stack: Stack) -> str | None:
    """Who the sign-out page says is signed in in the browser ``http``."""
    page = await fetch(http, "GET", f"{stack.authorize}/logout")
    assert page.status == 200
    start = page.text.find("Signed in as <strong>")
    if start < 0:
        assert "Not signed in" in page.text
        return None
    start += len("Signed in as <strong>")
    return page.text[start : page.text.index("</strong>", start)]


@dataclass(frozen=True)
class Hit:
    """One request the receiver got."""

    path: str
    content_type: str
    form: dict[str, str]
    at: float  # time.monotonic()


@dataclass
class LogoutReceiver:
    """A client's back-channel logout endpoint: answers the scripted ``answers`` in turn
    (a status, or HANG), then ``then``."""

    answers: list[int | str]
    then: int | str = 200
    hits: list[Hit] = field(default_factory=list)
    url: str = ""
    _hit: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        form = {
            name: value for name, value in (await request.post()).items() if isinstance(value, str)
        }
        SECRETS_USED.update(form.values())
        self.hits.append(Hit(request.path, request.content_type, form, time.monotonic()))
        self._hit.set()
        answer = self.answers.pop(0) if self.answers else self.then
        if answer == HANG:
            await asyncio.Event().wait()
        assert isinstance(answer, int)
        if 300 <= answer < 400:
            return web.Response(status=answer, headers={"Location": f"{self.url}/elsewhere"})
        return web.Response(status=answer)

    async def until_hits(self, count: int, seconds: float = 10.0) -> list[Hit]:
        """The hits, once there are ``count`` of them (failing after ``seconds``)."""
        deadline = time.monotonic() + seconds
        while len(self.hits) < count:
            self._hit.clear()
            left = deadline - time.monotonic()
            assert left > 0, f"{len(self.hits)} hit(s) of {count} after {seconds} s"
            try:
                await asyncio.wait_for(self._hit.wait(), left)
            except TimeoutError:
                pass
        return self.hits


@asynccontextmanager
async def logout_receiver(
    *answers: int | str, then: int | str = 200
) -> AsyncIterator[LogoutReceiver]:
    """A receiver on a free loopback port, at ``receiver.url`` (plain http: the test stack
    runs in development mode, TESSERA_INSECURE_LOOPBACK)."""
    receiver = LogoutReceiver(list(answers), then)
    app = web.Application()
    app.router.add_post("/backchannel-logout", receiver.handle)
    app.router.add_post("/backchannel-logout/elsewhere", receiver.handle)
    # A hanging request is cut off when the test ends, not waited for.
    runner = web.AppRunner(app, shutdown_timeout=0.1, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    receiver.url = f"http://127.0.0.1:{port}/backchannel-logout"
    try:
        yield receiver
    finally:
        await runner.cleanup()


def refused_url() -> str:
    """A loopback URL where nothing listens: connecting is refused at once."""
    return f"http://127.0.0.1:{free_port()}/backchannel-logout"
