"""GET /metrics on every service: requests by route template and status, latency, OAuth
errors, Redis errors and grants issued, in the Prometheus text format."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client import generate_latest
from pytest_aiohttp import AiohttpClient
from redis.asyncio import Redis

from services.introspect.app import create_app as introspect_app
from services.token.app import create_app as token_app
from shared.web import metrics
from shared.web.metrics import METRICS
from tests.flows import exchange
from tests.metrics_scrape import Scrape, samples, value
from tests.records import make_setup
from tests.stack import FORWARDED_HTTPS, Stack, unreachable_redis


async def scrape_service(http: aiohttp.ClientSession, base: str) -> Scrape:
    async with http.get(f"{base}/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return samples(await r.text())


@pytest.mark.parametrize("service", ["authorize", "token", "introspect"])
async def test_every_service_serves_metrics(
    stack: Stack, http: aiohttp.ClientSession, service: str
) -> None:
    base = getattr(stack, service)
    async with http.get(f"{base}/healthz"):
        pass

    scrape = await scrape_service(http, base)

    assert value(
        scrape, "tessera_http_requests_total", method="GET", route="/healthz", status="200"
    )
    assert value(scrape, "process_resident_memory_bytes") > 0
    assert (
        value(scrape, "tessera_http_request_duration_seconds_count", method="GET", route="/healthz")
        >= 1
    )


async def test_an_oauth_error_is_counted_by_its_code(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    setup = await make_setup(redis)
    before = await scrape_service(http, stack.token)

    reply = await exchange(http, stack, setup.client, "fam.not-a-code")

    assert reply.body["error"] == "invalid_grant"
    after = await scrape_service(http, stack.token)
    for name, labels in (
        ("tessera_oauth_errors_total", {"error": "invalid_grant"}),
        ("tessera_http_requests_total", {"method": "POST", "route": "/token", "status": "400"}),
    ):
        assert value(after, name, **labels) == value(before, name, **labels) + 1


async def test_unreachable_redis_counts_unavailable_and_redis_errors(
    aiohttp_client: AiohttpClient,
) -> None:
    client = await aiohttp_client(token_app(unreachable_redis()), headers=FORWARDED_HTTPS)
    basic = {"Authorization": "Basic YTpi"}

    failed = await client.post("/token", data={"grant_type": "x"}, headers=basic)
    not_ready = await client.get("/readyz")

    assert (failed.status, not_ready.status) == (503, 503)
    scrape = samples(await (await client.get("/metrics")).text())
    assert value(scrape, "tessera_oauth_errors_total", error="temporarily_unavailable") == 1
    assert value(scrape, "tessera_oauth_errors_total", error="server_error") == 0
    assert value(scrape, "tessera_redis_errors_total", error="ConnectionError") == 2
    token_503 = {"method": "POST", "route": "/token", "status": "503"}
    assert value(scrape, "tessera_http_requests_total", **token_503) == 1


async def test_labels_stay_bounded_whatever_the_client_sends(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(token_app(unreachable_redis()), headers=FORWARDED_HTTPS)
    for n in range(3):
        assert (await client.get(f"/probe-{n}/secret-{n}")).status == 404
    assert (await client.request("PROPFIND", "/token")).status == 405

    text = await (await client.get("/metrics")).text()
    scrape = samples(text)

    assert "probe-" not in text
    assert "PROPFIND" not in text
    unmatched = {"method": "GET", "route": metrics.UNMATCHED, "status": "404"}
    assert value(scrape, "tessera_http_requests_total", **unmatched) == 3
    # A 405 matched no route either: aiohttp answers it from a system route.
    refused = {"method": "OTHER", "route": metrics.UNMATCHED, "status": "405"}
    assert value(scrape, "tessera_http_requests_total", **refused) == 1


async def test_each_application_counts_only_its_own_requests(aiohttp_client: AiohttpClient) -> None:
    """Two apps in one process (as in these tests) have registries of their own."""
    first = await aiohttp_client(token_app(unreachable_redis()), headers=FORWARDED_HTTPS)
    second = await aiohttp_client(introspect_app(unreachable_redis()), headers=FORWARDED_HTTPS)
    await first.get("/healthz")
    await first.get("/healthz")

    for client, expected in ((first, 2), (second, 0)):
        scrape = samples(await (await client.get("/metrics")).text())
        healthz = {"method": "GET", "route": "/healthz", "status": "200"}
        assert value(scrape, "tessera_http_requests_total", **healthz) == expected


def test_grants_issued_are_counted_by_grant_type() -> None:
    app = web.Application()
    app[METRICS] = metrics.Metrics.create()
    request = make_mocked_request("POST", "/token", app=app)

    metrics.grant_issued(request, "authorization_code")
    metrics.grant_issued(request, "authorization_code")
    metrics.grant_issued(request, "client_credentials")

    scrape = samples(generate_latest(app[METRICS].registry).decode())
    issued = "tessera_grants_issued_total"
    assert value(scrape, issued, grant_type="authorization_code") == 2
    assert value(scrape, issued, grant_type="client_credentials") == 1
