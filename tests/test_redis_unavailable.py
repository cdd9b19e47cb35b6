"""When Redis cannot serve (gone, too slow, failing over, out of memory), every endpoint
answers 503 temporarily_unavailable with Retry-After (RFC 6749 §4.1.2.1, §5.2), and
neither the response nor the log carries a stack trace; a bug is still server_error."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient
from redis import exceptions as redis_exceptions
from yarl import URL

from devtools.local_processes import ProcessGroup, free_port, start_redis
from services.authorize.app import create_app as authorize_app
from services.introspect.app import create_app as introspect_app
from services.token.app import create_app as token_app
from shared.storage.redis_store import connect
from shared.web.base_app import redis_unavailable
from tests.records import make_setup
from tests.replies import basic_auth_for
from tests.stack import (
    FORWARDED_HTTPS,
    CreateApp,
    line_fields,
    production_settings,
    unreachable_redis,
)

JSON_ENDPOINTS = [(token_app, "/token"), (introspect_app, "/introspect")]
FORM = {"grant_type": "authorization_code", "code": "x.y", "token": "x.y"}
BASIC = {"Authorization": "Basic YTpi"}


def assert_quiet_log(caplog: pytest.LogCaptureFixture) -> None:
    """No stack trace, and one line about Redis beside the requests' own lines: the Redis
    client's, when it found the server unreachable."""
    assert "Traceback" not in caplog.text
    assert [r for r in caplog.records if r.exc_info] == []
    about_redis = [r for r in caplog.records if r.name in ("tessera.web", "tessera.redis")]
    assert [(r.name, r.levelno) for r in about_redis] == [("tessera.redis", logging.WARNING)]
    assert about_redis[0].getMessage().startswith("Redis unavailable, failing commands at once")


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [line_fields(r) for r in caplog.records if r.name == "tessera.access"]


@pytest.mark.parametrize(("create_app", "path"), JSON_ENDPOINTS)
async def test_json_endpoints_answer_temporarily_unavailable(
    aiohttp_client: AiohttpClient,
    caplog: pytest.LogCaptureFixture,
    create_app: CreateApp,
    path: str,
) -> None:
    client = await aiohttp_client(create_app(unreachable_redis()), headers=FORWARDED_HTTPS)
    with caplog.at_level(logging.INFO):
        first = await client.post(path, data=FORM, headers=BASIC)
        second = await client.post(path, data=FORM, headers=BASIC)

    for response in (first, second):
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Content-Type"] == "application/json"
        text = await response.text()
        assert "Traceback" not in text
        body = await response.json()
        assert body["error"] == "temporarily_unavailable"
        assert "Redis" not in body["error_description"]
    # Two failing requests, one warning: an outage is not a line per request.
    assert_quiet_log(caplog)
    lines = access_lines(caplog)
    assert [(line["route"], line["status"]) for line in lines] == [(path, 503), (path, 503)]
    assert {line["redis_error"] for line in lines} == {"ConnectionError"}


async def test_authorize_shows_an_error_page(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    app: web.Application = authorize_app(unreachable_redis())
    client = await aiohttp_client(app, headers=FORWARDED_HTTPS)
    with caplog.at_level(logging.INFO):
        response = await client.get(
            "/authorize", params={"client_id": "c", "response_type": "code"}
        )

    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    page = await response.text()
    assert "temporarily_unavailable" in page
    assert "Traceback" not in page
    assert_quiet_log(caplog)


@pytest.mark.parametrize("create_app", [token_app, introspect_app, authorize_app])
async def test_probes_still_answer(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture, create_app: CreateApp
) -> None:
    client = await aiohttp_client(create_app(unreachable_redis()))

    with caplog.at_level(logging.INFO):
        ready = await client.get("/readyz")
        again = await client.get("/readyz")
        alive = await client.get("/healthz")

    for answer in (ready, again):
        assert (answer.status, await answer.json()) == (503, {"status": "unavailable"})
    assert (alive.status, await alive.json()) == (200, {"status": "ok"})
    # Probed every few seconds: the outage is told once, by the Redis client.
    assert_quiet_log(caplog)


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[str]:
    """A Redis server of this test's own, free to be misconfigured."""
    group = ProcessGroup()
    try:
        yield start_redis(group, free_port(), tmp_path / "redis", persistent=False)
    finally:
        group.stop()


async def test_redis_out_of_memory_is_503_and_reads_still_work(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture, own_redis: str
) -> None:
    redis = connect(own_redis)
    try:
        setup = await make_setup(redis, grants=["client_credentials"], redirect_uris=[])
        # No eviction (the default) and no room: Redis refuses every write with OOM.
        await redis.config_set("maxmemory", 1)
        client = await aiohttp_client(
            token_app(production_settings(own_redis)), headers=FORWARDED_HTTPS
        )
        form = {"grant_type": "client_credentials", "scope": setup.scope}
        with caplog.at_level(logging.INFO):
            response = await client.post("/token", data=form, headers=basic_auth_for(setup.client))
        # A request refused after reads only still gets its ordinary answer.
        wrong = await client.post(
            "/token", data={**form, "scope": "nope"}, headers=basic_auth_for(setup.client)
        )
    finally:
        await redis.aclose()

    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert (await response.json())["error"] == "temporarily_unavailable"
    assert "Traceback" not in caplog.text
    assert [r for r in caplog.records if r.exc_info] == []
    (line,) = [line for line in access_lines(caplog) if line["status"] == 503]
    assert line["redis_error"] == "OutOfMemoryError"
    assert (wrong.status, (await wrong.json())["error"]) == (400, "invalid_scope")


async def test_a_bug_is_still_server_error_with_its_stack_trace_in_the_log(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    app = token_app(unreachable_redis())

    async def wrong_type(request: web.Request) -> web.Response:
        raise redis_exceptions.ResponseError("WRONGTYPE Operation against a key")

    app.router.add_get("/bug", wrong_type)
    client = await aiohttp_client(app, headers=FORWARDED_HTTPS)
    with caplog.at_level(logging.INFO):
        response = await client.get("/bug")

    assert response.status == 500
    assert "Retry-After" not in response.headers
    body = await response.json()
    assert body["error"] == "server_error"
    assert "WRONGTYPE" not in await response.text()
    (failed,) = [r for r in caplog.records if r.exc_info]
    assert failed.getMessage() == "GET /bug failed"
    assert "Traceback" in caplog.text


@pytest.mark.parametrize(
    ("exc", "unavailable"),
    [
        (redis_exceptions.ConnectionError("Error 111 connecting"), True),
        (redis_exceptions.TimeoutError("Timeout reading from socket"), True),
        (redis_exceptions.BusyLoadingError("Redis is loading the dataset in memory"), True),
        # redis-py's types for these replies take the code out of the message.
        (redis_exceptions.OutOfMemoryError("command not allowed when used memory"), True),
        (redis_exceptions.ReadOnlyError("You can't write against a read only replica."), True),
        (redis_exceptions.MasterDownError("Link with MASTER is down"), True),
        (redis_exceptions.ClusterDownError("The cluster is down"), True),
        (redis_exceptions.TryAgainError("Multiple keys request during rehashing"), True),
        # A plain ResponseError still carries the reply's code.
        (redis_exceptions.ResponseError("OOM command not allowed when used memory"), True),
        (redis_exceptions.ResponseError("READONLY You can't write against a replica."), True),
        (redis_exceptions.ResponseError("MASTERDOWN Link with MASTER is down"), True),
        (redis_exceptions.ResponseError("CLUSTERDOWN The cluster is down"), True),
        (redis_exceptions.ResponseError("TRYAGAIN Multiple keys request"), True),
        (redis_exceptions.ResponseError("LOADING Redis is loading"), True),
        (redis_exceptions.ResponseError("BUSY Redis is busy running a script."), True),
        (redis_exceptions.ResponseError("MISCONF Redis is configured to save RDB"), True),
        (redis_exceptions.ResponseError("NOREPLICAS Not enough good replicas"), True),
        # Redis 6 wraps a script's refused write in the script's own error.
        (
            redis_exceptions.ResponseError(
                "Error running script (call to f_0): @user_script:1: -READONLY You can't"
            ),
            True,
        ),
        (
            redis_exceptions.ResponseError(
                "ERR Error running script (call to f_0): @user_script:2: @user_script: 2: "
                "-OOM command not allowed when used memory > 'maxmemory'."
            ),
            True,
        ),
        (
            redis_exceptions.ResponseError(
                "ERR Error running script (call to f_0): @user_script:1: -WRONGTYPE Operation"
            ),
            False,
        ),
        # Cluster redirections still unsettled after the retry, or too many of them.
        (redis_exceptions.MovedError("3999 127.0.0.1:6381"), True),
        (redis_exceptions.AskError("3999 127.0.0.1:6381"), True),
        (redis_exceptions.ClusterError("more than 5 redirections for one command"), True),
        # Bugs and misuse: retrying would not help.
        (redis_exceptions.ResponseError("WRONGTYPE Operation against a key"), False),
        (redis_exceptions.ResponseError("ERR unknown command"), False),
        (redis_exceptions.ResponseError("OOMPH not a reply code"), False),
        (redis_exceptions.NoScriptError("No matching script"), False),
        (redis_exceptions.DataError("Invalid input"), False),
        (ValueError("not Redis at all"), False),
    ],
)
def test_which_failures_mean_redis_is_unavailable(exc: Exception, unavailable: bool) -> None:
    assert redis_unavailable(exc) is unavailable


async def test_authorize_redirects_temporarily_unavailable_once_the_client_is_known(
    aiohttp_client: AiohttpClient, own_redis: str
) -> None:
    """RFC 6749 §4.1.2.1: after client_id and redirect_uri are checked, a Redis that
    cannot store the request is reported to the client by redirect, with its state."""
    redis = connect(own_redis)
    try:
        setup = await make_setup(redis, client_type="public")
        await redis.config_set("maxmemory", 1)  # reads work, every write is refused
        client = await aiohttp_client(
            authorize_app(production_settings(own_redis)), headers=FORWARDED_HTTPS
        )
        redirect_uri = setup.client.client.redirect_uris[0]
        response = await client.get(
            "/authorize",
            params={
                "response_type": "code",
                "client_id": setup.client.client_id,
                "redirect_uri": redirect_uri,
                "scope": setup.scope,
                "state": "s-123",
                "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                "code_challenge_method": "S256",
            },
            allow_redirects=False,
        )
    finally:
        await redis.aclose()

    assert response.status in (302, 303)
    location = URL(response.headers["Location"])
    assert str(location.with_query(None)) == redirect_uri
    assert location.query["error"] == "temporarily_unavailable"
    assert location.query["state"] == "s-123"
    assert location.query["iss"] == "https://id.example.com"
