"""Beyond TESSERA_MAX_IN_FLIGHT requests in flight, a process answers 503 with Retry-After
at once (JSON on the token and introspection services, the error page on the authorize
service), counts the refusal, and still answers its probes and scrapes."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from services.authorize.app import create_app as authorize_app
from services.introspect.app import create_app as introspect_app
from services.token.app import create_app as token_app
from shared.config.settings import Settings, SettingsError
from tests.metrics_scrape import Scrape, samples, value
from tests.stack import FORWARDED_HTTPS, CreateApp, Stack, line_fields, production_settings

# A test client of a service run in this process.
Client = TestClient[web.Request, web.Application]

LIMIT = 3
# A refusal does not wait for anything: well under this.
PROMPTLY = 2.0


@dataclass
class Held:
    """Requests to GET /hold wait in their handler until released."""

    expected: int
    entered: int = 0
    all_entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handler(self, request: web.Request) -> web.Response:
        self.entered += 1
        if self.entered >= self.expected:
            self.all_entered.set()
        await self.release.wait()
        return web.json_response({"held": True})


async def overloaded(
    aiohttp_client: AiohttpClient, create_app: CreateApp, stack: Stack
) -> tuple[Client, Held, list[asyncio.Task[aiohttp.ClientResponse]]]:
    """An app that allows LIMIT requests in flight, with LIMIT of them held."""
    app = create_app(production_settings(stack.redis_url, TESSERA_MAX_IN_FLIGHT=str(LIMIT)))
    held = Held(expected=LIMIT)
    app.router.add_get("/hold", held.handler)
    client = await aiohttp_client(app, headers=FORWARDED_HTTPS)
    tasks = [asyncio.create_task(client.get("/hold")) for _ in range(LIMIT)]
    async with asyncio.timeout(PROMPTLY):
        await held.all_entered.wait()
    return client, held, tasks


async def released(held: Held, tasks: list[asyncio.Task[aiohttp.ClientResponse]]) -> None:
    held.release.set()
    for response in await asyncio.gather(*tasks):
        assert response.status == 200
        assert await response.json() == {"held": True}


async def scrape(client: Client) -> Scrape:
    response = await client.get("/metrics")
    assert response.status == 200
    return samples(await response.text())


@pytest.mark.parametrize(
    ("create_app", "path"), [(token_app, "/token"), (introspect_app, "/introspect")]
)
async def test_json_services_refuse_the_request_beyond_the_limit(
    aiohttp_client: AiohttpClient,
    stack: Stack,
    caplog: pytest.LogCaptureFixture,
    create_app: CreateApp,
    path: str,
) -> None:
    client, held, tasks = await overloaded(aiohttp_client, create_app, stack)

    with caplog.at_level(logging.INFO, logger="tessera.access"):
        async with asyncio.timeout(PROMPTLY):
            refused = await client.post(path, data={"grant_type": "client_credentials"})

    assert refused.status == 503
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["Cache-Control"] == "no-store"
    assert refused.headers["Content-Type"] == "application/json"
    assert "X-Request-ID" in refused.headers
    body = await refused.json()
    assert body["error"] == "temporarily_unavailable"
    assert body["error_description"]
    (line,) = [line_fields(r) for r in caplog.records if line_fields(r)["route"] == path]
    assert (line["status"], line["refused"]) == (503, "overload")

    # The probes and the scrape are never refused, and readiness still says Redis answers.
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert (ready.status, await ready.json()) == (200, {"status": "ready"})
    metrics = await scrape(client)
    assert value(metrics, "tessera_overload_refusals_total") == 1
    assert value(metrics, "tessera_http_requests_in_flight") == LIMIT
    refused_series = {"method": "POST", "route": path, "status": "503"}
    assert value(metrics, "tessera_http_requests_total", **refused_series) == 1
    assert value(metrics, "tessera_oauth_errors_total", error="temporarily_unavailable") == 1

    await released(held, tasks)
    # Room again: the next request is served (the release stays set).
    again = await client.get("/hold")
    assert (again.status, await again.json()) == (200, {"held": True})
    metrics = await scrape(client)
    assert value(metrics, "tessera_http_requests_in_flight") == 0
    assert value(metrics, "tessera_overload_refusals_total") == 1


async def test_the_authorize_service_shows_its_error_page(
    aiohttp_client: AiohttpClient, stack: Stack
) -> None:
    client, held, tasks = await overloaded(aiohttp_client, authorize_app, stack)

    async with asyncio.timeout(PROMPTLY):
        refused = await client.get("/authorize", params={"client_id": "c"})

    assert refused.status == 503
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["Content-Type"] == "text/html; charset=utf-8"
    assert refused.headers["Cache-Control"] == "no-store"
    assert refused.headers["X-Frame-Options"] == "DENY"
    page = await refused.text()
    assert "<code>temporarily_unavailable</code>" in page
    assert "try again shortly" in page
    assert (await client.get("/healthz")).status == 200
    assert value(await scrape(client), "tessera_overload_refusals_total") == 1

    await released(held, tasks)


async def test_a_request_that_fails_frees_its_place(
    aiohttp_client: AiohttpClient, stack: Stack
) -> None:
    app = token_app(production_settings(stack.redis_url, TESSERA_MAX_IN_FLIGHT="1"))

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    app.router.add_get("/broken", broken)
    client = await aiohttp_client(app, headers=FORWARDED_HTTPS)

    statuses = [(await client.get("/broken")).status for _ in range(3)]

    assert statuses == [500, 500, 500]
    metrics = await scrape(client)
    assert value(metrics, "tessera_http_requests_in_flight") == 0
    assert value(metrics, "tessera_overload_refusals_total") == 0


def test_max_in_flight_setting() -> None:
    issuer = {"TESSERA_ISSUER": "https://id.example.com"}
    assert Settings.from_env(issuer).max_in_flight == 2048
    assert Settings.from_env(issuer | {"TESSERA_MAX_IN_FLIGHT": "64"}).max_in_flight == 64
    for bad in ("0", "-1", "many", "1.5"):
        with pytest.raises(SettingsError, match=f"TESSERA_MAX_IN_FLIGHT={bad!r}"):
            Settings.from_env(issuer | {"TESSERA_MAX_IN_FLIGHT": bad})
