"""The one middleware in front of every request: its id, its line and metrics whatever
answered it (a handler, the error middleware, aiohttp's 404), 499 for a request given up
on, Connection: close while draining, and metric series looked up once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

from services.token.app import create_app as token_app
from shared.web.logs import QUIET_ROUTES
from shared.web.metrics import METRICS
from shared.web.shutdown import DRAIN
from tests.flows import new_request_id
from tests.metrics_scrape import samples, value
from tests.stack import FORWARDED_HTTPS, line_fields, unreachable_redis


def access_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "tessera.access"]


async def test_a_request_given_up_on_is_logged_and_counted_as_499(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    app = token_app(unreachable_redis())
    started = asyncio.Event()
    serving: list[asyncio.Task[object]] = []

    async def slow(request: web.Request) -> web.Response:
        task = asyncio.current_task()
        assert task is not None
        serving.append(task)
        started.set()
        await asyncio.sleep(30)
        return web.Response(text="too late")

    app.router.add_get("/slow", slow)
    client = await aiohttp_client(app, headers=FORWARDED_HTTPS)
    call = asyncio.create_task(client.get("/slow"))
    await started.wait()

    with caplog.at_level(logging.INFO, logger="tessera.access"):
        # As the server does to a request it gives up on (a client gone, shutdown).
        (task,) = serving
        task.cancel()
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await call

    (line,) = access_lines(caplog)
    assert line.getMessage() == "GET /slow 499"
    assert line_fields(line)["status"] == 499
    scrape = samples(await (await client.get("/metrics")).text())
    assert value(scrape, "tessera_http_requests_total", method="GET", route="/slow", status="499")
    assert value(scrape, "tessera_http_requests_in_flight") == 0


@pytest.mark.parametrize(("path", "status"), [("/healthz", 200), ("/nowhere", 404)])
async def test_while_draining_every_answer_closes_its_connection(
    aiohttp_client: AiohttpClient, path: str, status: int
) -> None:
    app = token_app(unreachable_redis())
    client = await aiohttp_client(app, headers=FORWARDED_HTTPS)
    before = await client.get(path, headers={"X-Request-ID": new_request_id()})
    app[DRAIN].draining = True

    during_id = new_request_id()
    during = await client.get(path, headers={"X-Request-ID": during_id})

    assert (before.status, during.status) == (status, status)
    assert before.headers.get("Connection") != "close"
    assert during.headers["Connection"] == "close"
    assert during.headers["X-Request-ID"] == during_id


async def test_probe_lines_are_debug_unless_the_probe_fails(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = await aiohttp_client(token_app(unreachable_redis()))
    assert QUIET_ROUTES == {"/healthz", "/readyz", "/metrics"}

    with caplog.at_level(logging.DEBUG, logger="tessera.access"):
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 503  # Redis does not answer

    assert [(r.getMessage(), r.levelno) for r in access_lines(caplog)] == [
        ("GET /healthz 200", logging.DEBUG),
        ("GET /readyz 503", logging.INFO),
    ]


async def test_metric_series_are_looked_up_once_each(
    aiohttp_client: AiohttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = token_app(unreachable_redis())
    client = await aiohttp_client(app, headers=FORWARDED_HTTPS)
    metrics = app[METRICS]
    lookups: list[tuple[str, ...]] = []
    for name in ("requests", "request_duration"):
        series = getattr(metrics, name)
        original = series.labels

        def counted(*labels: str, original: Callable[..., object] = original) -> object:
            lookups.append(labels)
            return original(*labels)

        monkeypatch.setattr(series, "labels", counted)

    for _ in range(5):
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/nowhere")).status == 404

    assert sorted(lookups) == [
        ("GET", "/healthz"),
        ("GET", "/healthz", "200"),
        ("GET", "unmatched"),
        ("GET", "unmatched", "404"),
    ]
    scrape = samples(await (await client.get("/metrics")).text())
    healthz = {"method": "GET", "route": "/healthz"}
    assert value(scrape, "tessera_http_requests_total", **healthz, status="200") == 5
    assert value(scrape, "tessera_http_request_duration_seconds_count", **healthz) == 5
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(scrape, "tessera_http_requests_total", **unmatched) == 5
