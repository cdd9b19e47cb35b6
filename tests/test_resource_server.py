"""A resource server protected with the resource-server library (tessera_resource_server),
end to end: the example notes API in this process, checking tokens that the real services
issued through the browser flow, by introspection (RFC 7662) with a bounded cache; the
answers of RFC 6750 §3; and 503, never 401, when Tessera cannot be asked. The library's
own tests, which need no Tessera, are in resource-server/tests."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis
from tessera_resource_server import (
    RESOURCE_SERVER,
    ResourceServer,
    ResourceServerSettings,
    required_scopes,
)

from devtools.local_processes import free_port
from services.example_api.app import READ, WRITE, create_app
from services.introspect.app import create_app as introspect_app
from shared.storage import clients
from shared.web import logs
from tests.flows import revoke
from tests.resource_servers import (
    Answer,
    Start,
    assert_challenge,
    browser_token,
    call,
    nowhere,
    requests_served,
    rs_settings,
)
from tests.stack import Stack, production_settings
from tests.waiting import until_heard


def test_the_example_routes_declare_their_scopes() -> None:
    app = create_app(
        ResourceServerSettings(
            issuer="https://id.example.com", jwks_uri="https://id.example.com/jwks.json"
        )
    )
    declared = {
        (route.method, route.resource.canonical): required_scopes(route.handler)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    assert declared == {
        ("GET", "/notes"): (READ,),
        ("GET", "/notes/{note_id}"): (READ,),
        ("POST", "/notes"): (WRITE,),
        ("GET", "/healthz"): (),
        ("GET", "/readyz"): (),
    }


# --- a token from the browser flow ---------------------------------------------------------


async def test_a_browser_token_reads_and_is_refused_what_its_scope_lacks(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, notes_api: Start
) -> None:
    holder = await browser_token(http, stack, redis, READ)
    api = await notes_api(rs_settings(stack, holder.api))

    read = await call(api, "GET", "/notes", holder.token)
    assert read.status == 200, read.body
    assert read.body == {"owner": holder.setup.user, "notes": []}
    assert read.headers["Cache-Control"] == "no-store"

    # RFC 6750 §3.1: the token is good but lacks notes:write, which the challenge names.
    write = await call(api, "POST", "/notes", holder.token, json={"text": "hello"})
    assert_challenge(write, 403, "insufficient_scope", scope=WRITE)


async def test_the_handler_sees_the_owner_and_keeps_notes_to_their_owner(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, notes_api: Start
) -> None:
    writer = await browser_token(http, stack, redis, f"{READ} {WRITE}")
    api = await notes_api(rs_settings(stack, writer.api))

    added = await call(api, "POST", "/notes", writer.token, json={"text": "buy milk"})
    assert added.status == 201, added.body
    note_id = added.body["id"]
    mine = await call(api, "GET", f"/notes/{note_id}", writer.token)
    assert mine.status == 200
    assert mine.body["text"] == "buy milk"
    # The handler read the token's subject: the user's id, not the client's.
    info = (await call(api, "GET", "/notes", writer.token)).body
    assert info["owner"] == writer.setup.user
    assert [note["id"] for note in info["notes"]] == [note_id]

    # Another person, with the same scope from another browser: the scope allows reading
    # notes, the API's own rule allows only one's own.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        other = await browser_token(browser, stack, redis, READ)
    theirs = await call(api, "GET", f"/notes/{note_id}", other.token)
    assert theirs.status == 404
    assert (await call(api, "GET", "/notes", other.token)).body["notes"] == []


async def test_a_revoked_token_is_refused_once_the_cache_bound_has_passed(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, notes_api: Start
) -> None:
    holder = await browser_token(http, stack, redis, READ)
    api = await notes_api(rs_settings(stack, holder.api, cache_seconds=1))
    assert (await call(api, "GET", "/notes", holder.token)).status == 200
    cached_at = time.monotonic()

    status, _, _ = await revoke(http, stack, holder.setup.client, holder.token)
    assert status == 200

    # The cached answer may serve for at most a second; after it, Tessera is asked again.
    await asyncio.sleep(max(0.0, cached_at + 1.1 - time.monotonic()))
    assert_challenge(await call(api, "GET", "/notes", holder.token), 401, "invalid_token")


async def test_with_caching_off_a_revoked_token_is_refused_at_once(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, notes_api: Start
) -> None:
    holder = await browser_token(http, stack, redis, READ)
    api = await notes_api(rs_settings(stack, holder.api, cache_seconds=0))
    assert (await call(api, "GET", "/notes", holder.token)).status == 200

    status, _, _ = await revoke(http, stack, holder.setup.client, holder.token)
    assert status == 200

    assert_challenge(await call(api, "GET", "/notes", holder.token), 401, "invalid_token")


async def test_a_cached_answer_is_reused_without_asking_tessera(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, notes_api: Start
) -> None:
    holder = await browser_token(http, stack, redis, READ)
    api = await notes_api(rs_settings(stack, holder.api, cache_seconds=60))
    before = await requests_served(http, stack.introspect, "/introspect")

    for _ in range(3):
        assert (await call(api, "GET", "/notes", holder.token)).status == 200

    assert await requests_served(http, stack.introspect, "/introspect") == before + 1


async def test_a_disabled_client_s_token_is_refused(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, notes_api: Start
) -> None:
    holder = await browser_token(http, stack, redis, READ)
    api = await notes_api(rs_settings(stack, holder.api, cache_seconds=0))
    await clients.set_enabled(redis, holder.setup.client.client_id, False)

    refused = await until_heard(
        lambda: call(api, "GET", "/notes", holder.token), lambda reply: reply.status == 401
    )
    assert_challenge(refused, 401, "invalid_token")


# --- RFC 6750 §3: what a request without a good token gets ---------------------------------


async def test_no_credentials_get_a_challenge_without_an_error_code(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, notes_api: Start
) -> None:
    holder = await browser_token(http, stack, redis, READ)
    api = await notes_api(rs_settings(stack, holder.api))

    # RFC 6750 §3.1: no error code when the request carries no bearer credentials, and
    # another scheme's credentials are none; a route that does not exist is no exception.
    assert_challenge(await call(api, "GET", "/notes"), 401, None)
    basic = {"Authorization": "Basic ZGVtbzpkZW1v"}
    assert_challenge(await call(api, "GET", "/notes", headers=basic), 401, None)
    assert_challenge(await call(api, "GET", "/no-such-route"), 401, None)
    # Public routes need nothing.
    assert (await call(api, "GET", "/healthz")).status == 200
    assert (await call(api, "GET", "/readyz")).status == 200


async def test_malformed_requests_are_invalid_request(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, notes_api: Start
) -> None:
    holder = await browser_token(http, stack, redis, READ)
    api = await notes_api(rs_settings(stack, holder.api))
    bearer = f"Bearer {holder.token}"
    before = await requests_served(http, stack.introspect, "/introspect")

    two_headers = await call(
        api, "GET", "/notes", headers=[("Authorization", bearer), ("Authorization", bearer)]
    )
    assert_challenge(two_headers, 400, "invalid_request")
    # RFC 6750 §2: one method per request; and §2.3 (the query) is not supported at all.
    both = await call(api, "GET", f"/notes?access_token={holder.token}", holder.token)
    assert_challenge(both, 400, "invalid_request")
    query_only = await call(api, "GET", f"/notes?access_token={holder.token}")
    assert_challenge(query_only, 400, "invalid_request")
    for value in ("Bearer", "Bearer ", "Bearer a b", "Bearer caf\u00e9", 'Bearer x"y'):
        answer = await call(api, "GET", "/notes", headers={"Authorization": value})
        assert_challenge(answer, 400, "invalid_request")
    # None of these reached Tessera.
    assert await requests_served(http, stack.introspect, "/introspect") == before


async def test_unknown_and_garbage_tokens_are_invalid_token(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, notes_api: Start
) -> None:
    holder = await browser_token(http, stack, redis, READ)
    api = await notes_api(rs_settings(stack, holder.api))

    for token in ("unknown", holder.token + "A", holder.token[:-1], "a.b.c", "x" * 5000):
        assert_challenge(await call(api, "GET", "/notes", token), 401, "invalid_token")
    # Refusals are never cached (RFC 7662 §4); the live token's answer is, and it works.
    cache = api.app[RESOURCE_SERVER].cache
    assert len(cache) == 0
    assert (await call(api, "GET", "/notes", holder.token)).status == 200
    assert len(cache) == 1


# --- Tessera unavailable: 503, never 401 -------------------------------------------------


def assert_unavailable(answer: Answer) -> None:
    assert answer.status == 503, (answer.status, answer.body)
    assert "WWW-Authenticate" not in answer.headers
    assert answer.body["error"] == "temporarily_unavailable"
    assert answer.headers["Cache-Control"] == "no-store"


async def test_introspection_unreachable_is_503_with_a_log_line(
    stack: Stack,
    redis: Redis,
    http: aiohttp.ClientSession,
    notes_api: Start,
    caplog: pytest.LogCaptureFixture,
) -> None:
    holder = await browser_token(http, stack, redis, READ)
    down = f"{nowhere()}/introspect"
    api = await notes_api(rs_settings(stack, holder.api, introspection_endpoint=down))

    with caplog.at_level(logging.INFO, logger="tessera.resource_server"):
        answer = await call(api, "GET", "/notes", holder.token)

    assert_unavailable(answer)
    assert f"Tessera unavailable: POST {down}: ClientConnectorError" in caplog.text
    assert holder.token not in caplog.text


async def test_introspection_answering_5xx_is_503(
    stack: Stack,
    redis: Redis,
    http: aiohttp.ClientSession,
    notes_api: Start,
    caplog: pytest.LogCaptureFixture,
) -> None:
    holder = await browser_token(http, stack, redis, READ)
    # A real introspection service whose Redis is gone: it answers 503.
    gone = f"redis://127.0.0.1:{free_port()}/0"
    broken = TestServer(introspect_app(production_settings(gone, TESSERA_REQUIRE_HTTPS="false")))
    await broken.start_server()
    try:
        url = str(broken.make_url("/introspect"))
        api = await notes_api(rs_settings(stack, holder.api, introspection_endpoint=url))
        with caplog.at_level(logging.INFO, logger="tessera.resource_server"):
            answer = await call(api, "GET", "/notes", holder.token)
    finally:
        await broken.close()

    assert_unavailable(answer)
    assert f"Tessera unavailable: POST {url} answered 503" in caplog.text


async def test_wrong_resource_server_credentials_are_503_not_401(
    stack: Stack,
    redis: Redis,
    http: aiohttp.ClientSession,
    notes_api: Start,
    caplog: pytest.LogCaptureFixture,
) -> None:
    holder = await browser_token(http, stack, redis, READ)
    api = await notes_api(rs_settings(stack, holder.api, client_secret="not-the-secret"))

    with caplog.at_level(logging.INFO, logger="tessera.resource_server"):
        answer = await call(api, "GET", "/notes", holder.token)

    assert_unavailable(answer)
    assert "refused this resource server (401)" in caplog.text


async def test_nothing_logs_the_token(
    stack: Stack,
    redis: Redis,
    http: aiohttp.ClientSession,
    notes_api: Start,
    caplog: pytest.LogCaptureFixture,
) -> None:
    holder = await browser_token(http, stack, redis, READ)
    api = await notes_api(rs_settings(stack, holder.api, cache_seconds=0))

    with caplog.at_level(logging.DEBUG):
        assert (await call(api, "GET", "/notes", holder.token)).status == 200
        await call(api, "POST", "/notes", holder.token, json={"text": "x"})
        await call(api, "GET", "/notes", holder.token + "A")
        await call(api, "GET", f"/notes?access_token={holder.token}")
        await revoke(http, stack, holder.setup.client, holder.token)
        await call(api, "GET", "/notes", holder.token)

    # aiohttp's own access log (on in the test server, off in the example API's
    # __main__) writes the request line, query and all: the README says to turn it off.
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access")
    assert "refused" in ours  # the refusals were logged ...
    assert holder.token not in ours  # ... without the token
    assert holder.token[-20:] not in ours


async def test_a_newline_in_the_path_cannot_split_a_log_line(
    stack: Stack,
    redis: Redis,
    http: aiohttp.ClientSession,
    notes_api: Start,
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = await browser_token(http, stack, redis, WRITE)  # lacks notes:read
    api = await notes_api(rs_settings(stack, writer.api))
    down = f"{nowhere()}/introspect"
    unavailable = await notes_api(rs_settings(stack, writer.api, introspection_endpoint=down))
    # %0A decodes to a newline in request.path; a forged "INFO ..." line would follow it.
    path = "/notes/x%0A2026-01-01 00:00:00 example_api INFO tessera.resource_server: forged"

    with caplog.at_level(logging.INFO, logger="tessera.resource_server"):
        assert (await call(api, "GET", path)).status == 401  # no token
        assert (await call(api, "GET", path, writer.token)).status == 403  # requires_scope
        assert (await call(unavailable, "GET", path, writer.token)).status == 503

    ours = [r for r in caplog.records if r.name == "tessera.resource_server"]
    formatter = logs.TextFormatter("example_api")  # TESSERA_LOG_FORMAT=text
    lines = [formatter.format(record) for record in ours if "/notes/x" in record.getMessage()]
    assert len(lines) == 3, [r.getMessage() for r in ours]
    for line in lines:
        assert "\n" not in line and "\r" not in line, line
        assert "/notes/x%0A2026-01-01" in line  # the path as it came, still readable


def test_the_readme_sample_is_the_real_api() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Protecting an API (resource servers)", 1)[1]
    sample = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}

    exec(compile(sample, "README.md", "exec"), namespace)  # noqa: S102 - our own README

    app = namespace["app"]
    assert isinstance(app[RESOURCE_SERVER], ResourceServer)
    assert required_scopes(namespace["read_note"]) == ("notes:read",)
    assert app[RESOURCE_SERVER].settings.jwks_uri == "https://id.example.com/jwks.json"
    assert app[RESOURCE_SERVER].settings.scope_prefix == "notes:"
