"""Logs: one JSON line per request and per security event, each naming its request id;
never a query string, code, token, secret or Authorization header."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient, AiohttpServer
from redis.asyncio import Redis

from services.token.app import create_app as token_app
from shared.config.settings import Settings, SettingsError
from shared.domain.oauth_errors import invalid_request
from shared.security import fingerprint
from shared.storage import log_fingerprint_key
from shared.web import logs
from tests.flows import new_request_id, new_verifier
from tests.records import make_setup
from tests.replies import basic_auth_for
from tests.stack import FORWARDED_HTTPS, Stack, session_log, unreachable_redis

TOKEN_LOG = session_log("token")
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
# A caller's request id as ingress-nginx makes them (32 hex digits).
TWICE = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


# A buffer, and the handler writing to it.
Captured = tuple[io.StringIO, logging.Handler]


@pytest.fixture
def captured() -> Iterator[Captured]:
    """A handler on the root logger writing to a buffer; the formatter is the test's."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield out, handler
    root.removeHandler(handler)
    root.setLevel(level)


def json_lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], io.StringIO]]:
    """``logs.configure`` as a service calls it, with standard error a buffer; undone
    after the test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    for name in ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing"):
        monkeypatch.setattr(logging, name, getattr(logging, name))
    monkeypatch.setattr(logs, "_installed", None)

    def configure(log_format: str) -> io.StringIO:
        out = io.StringIO()
        monkeypatch.setattr(sys, "stderr", out)
        logs.configure("token", log_format)
        return out

    yield configure
    root.handlers[:] = handlers
    root.setLevel(level)


async def refused_twice(aiohttp_client: AiohttpClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same refused request twice: first with the configured handler alone (request
    lines skip the LogRecord), then beside another handler (they go through logging)."""
    app = token_app(unreachable_redis())
    records: list[logging.LogRecord] = []

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        records.append(logging.Logger.makeRecord(logs.access_log, *args, **kwargs))
        return records[-1]

    monkeypatch.setattr(logs.access_log, "makeRecord", make_record)

    async def lined(request: web.Request) -> web.Response:
        logs.add_to_line(request, client_id="c1", code="fam.a-code-never-logged")
        raise invalid_request("Not today.", cause="a test")

    app.router.add_get("/lined", lined)
    client = await aiohttp_client(app, headers=FORWARDED_HTTPS)
    for made in (0, 1):
        response = await client.get("/lined?code=in-query", headers={"X-Request-ID": TWICE})
        assert response.status == 400
        assert len(records) == made
        logging.getLogger().addHandler(logging.NullHandler())


async def test_a_request_line_without_its_record_is_the_same_json(
    aiohttp_client: AiohttpClient,
    configured: Callable[[str], io.StringIO],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = configured("json")

    await refused_twice(aiohttp_client, monkeypatch)

    lines = [line for line in json_lines(out) if line.get("request_id") == TWICE]
    refused, fast, _, slow = lines
    # Each request's lines in the order they were logged, every one naming the request.
    assert (refused["logger"], fast["logger"]) == ("tessera.web", "tessera.access")
    assert "invalid_request" in refused["message"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", fast["time"])
    for line in (fast, slow):
        assert 0 <= line.pop("duration_ms") < 10_000
        del line["time"]
    assert list(fast.items()) == list(slow.items())  # the same keys, in the same order
    assert fast == {
        "level": "INFO",
        "logger": "tessera.access",
        "service": "token",
        "message": "GET /lined 400",
        "request_id": TWICE,
        "client_id": "c1",
        "code": "[redacted]",
        "method": "GET",
        "route": "/lined",
        "path": "/lined",
        "status": 400,
        "remote": "127.0.0.1",
    }
    ours = "\n".join(line for line in out.getvalue().splitlines() if "aiohttp.access" not in line)
    assert "never-logged" not in ours
    assert "in-query" not in ours  # (the test server's own access log has it)


async def test_a_request_line_without_its_record_is_the_same_text(
    aiohttp_client: AiohttpClient,
    configured: Callable[[str], io.StringIO],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = configured("text")

    await refused_twice(aiohttp_client, monkeypatch)

    lines = [line for line in out.getvalue().splitlines() if f"[{TWICE}]" in line]
    refused, fast, _, slow = lines
    assert f" token INFO tessera.web [{TWICE}]: GET /lined refused: invalid_request" in refused

    def timeless(line: str) -> str:
        return re.sub(r" duration_ms=[0-9.]+", "", line.split(" ", 2)[2])

    assert (
        timeless(fast)
        == timeless(slow)
        == (
            f"token INFO tessera.access [{TWICE}]: GET /lined 400 client_id=c1 code=[redacted] "
            "method=GET route=/lined path=/lined status=400 remote=127.0.0.1"
        )
    )


async def test_lines_made_on_the_loop_are_written_together_once_its_iteration_ends() -> None:
    out = io.StringIO()
    sink = logs.LineSink(out)

    sink.write("one")
    sink.write("two")
    kept = out.getvalue()
    await asyncio.sleep(0)  # the loop ends this iteration
    written = out.getvalue()
    sink.write("three")
    await asyncio.to_thread(sink.write, "from a thread")  # written at once, in order

    assert (kept, written) == ("", "one\ntwo\n")
    assert out.getvalue() == "one\ntwo\nthree\nfrom a thread\n"


def test_lines_made_off_the_loop_are_written_at_once() -> None:
    out = io.StringIO()
    sink = logs.LineSink(out)

    sink.write("starting")

    assert out.getvalue() == "starting\n"


def test_no_line_is_lost_when_the_process_stops(tmp_path: Path) -> None:
    """Lines kept for a loop iteration that never comes are written at exit."""
    script = textwrap.dedent(
        """
        import asyncio, logging, os
        from shared.web import logs

        logs.configure("token", "json")
        loop = asyncio.new_event_loop()

        def burst():
            for n in range(1000):
                logging.getLogger("tessera.test").info("line %d", n)

        loop.call_soon(burst)
        loop.call_soon(loop.stop)  # the loop stops before the iteration that would write
        loop.run_forever()
        loop.close()
        print(os.fstat(2).st_size, flush=True)
        """
    )
    stderr = tmp_path / "stderr.log"
    with stderr.open("wb") as err:
        done = subprocess.run(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=err, timeout=60
        )

    assert done.returncode == 0
    assert done.stdout == b"0\n"  # nothing written before the process stopped
    lines = [orjson.loads(line) for line in stderr.read_text().splitlines()]
    assert [line["message"] for line in lines] == [f"line {n}" for n in range(1000)]


def test_a_plain_security_warning_is_rendered_with_its_request_id(captured: Captured) -> None:
    out, handler = captured
    handler.setFormatter(logs.JsonFormatter("token"))
    token = logs.request_id_var.set("req-42")
    try:
        logging.getLogger("tessera.security").warning("code replayed by client %s", "c1")
    finally:
        logs.request_id_var.reset(token)
    logging.getLogger("tessera.security").warning("outside any request")

    inside, outside = json_lines(out)
    assert inside["message"] == "code replayed by client c1"
    assert inside["request_id"] == "req-42"
    assert inside["level"] == "WARNING"
    assert inside["logger"] == "tessera.security"
    assert inside["service"] == "token"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", inside["time"])
    assert "request_id" not in outside


def test_security_event_has_structured_fields_and_redacts_secrets(captured: Captured) -> None:
    out, handler = captured
    handler.setFormatter(logs.JsonFormatter("token"))
    code, secret = f"fam.{new_verifier()}", new_verifier()

    logs.security_event(
        "code_replayed", client_id="c1", family="fam", code=code, client_secret=secret
    )

    (line,) = json_lines(out)
    assert line["event"] == "code_replayed"
    assert line["message"] == "code_replayed"
    assert line["level"] == "WARNING"
    assert line["logger"] == "tessera.security"
    assert (line["client_id"], line["family"]) == ("c1", "fam")
    assert line["code"] == line["client_secret"] == "[redacted]"
    assert code not in out.getvalue()
    assert secret not in out.getvalue()


def test_a_field_never_overrides_the_lines_own_keys(captured: Captured) -> None:
    out, handler = captured
    handler.setFormatter(logs.JsonFormatter("token"))
    logs.security_event("login_failed", level="DEBUG", message="forged")
    (line,) = json_lines(out)
    assert (line["level"], line["message"]) == ("WARNING", "login_failed")


def test_text_format_quotes_values_that_could_forge_a_line(captured: Captured) -> None:
    out, handler = captured
    handler.setFormatter(logs.TextFormatter("authorize"))
    token = logs.request_id_var.set("req-7")
    try:
        logs.security_event("login_failed", username="mallory\nFAKE line", client_id="c1")
    finally:
        logs.request_id_var.reset(token)

    (line,) = out.getvalue().splitlines()
    assert " authorize WARNING tessera.security [req-7]: login_failed" in line
    assert line.endswith(' event=login_failed username="mallory\\nFAKE line" client_id=c1')


@pytest.mark.parametrize(
    ("header", "kept"),
    [
        ("7f3c2a9e-1b4d-4c5e-9f00-123456789abc", True),
        ("7F3C2A9E-1B4D-4C5E-9F00-123456789ABC", True),
        ("0f1e2d3c4b5a69788796a5b4c3d2e1f0", True),
        # Only those two forms: every line names the id, and a credential sent in the
        # header by mistake (a client secret, a code, a password) has neither.
        ("abc.DEF_123:x+y/z=", False),
        ("trace-1a2b3c4d", False),
        ("0f1e2d3c4b5a69788796a5b4c3d2e1f0a", False),
        ("IamGw9Uw4gKHxGrJNoEN-ii_msdy9WpLHMtO-03fgWA", False),  # a client secret's shape
        ("", False),
        ("x" * 65, False),
        ("has space", False),
        ("line\nbreak", False),
        ('quote"d', False),
        (None, False),
    ],
)
def test_request_id_from_header(header: str | None, kept: bool) -> None:
    request_id = logs.request_id_from(header)
    if kept:
        assert request_id == header
    else:
        assert GENERATED_ID.fullmatch(request_id)


def test_log_format_setting() -> None:
    issuer = {"TESSERA_ISSUER": "https://id.example.com"}
    assert Settings.from_env(issuer).log_format == "json"
    assert Settings.from_env(issuer | {"TESSERA_LOG_FORMAT": "Text"}).log_format == "text"
    with pytest.raises(SettingsError, match="TESSERA_LOG_FORMAT"):
        Settings.from_env(issuer | {"TESSERA_LOG_FORMAT": "xml"})


async def test_a_malformed_request_line_is_not_logged(
    aiohttp_server: AiohttpServer, captured: Captured
) -> None:
    """aiohttp's parser error quotes the request line; only its type is logged."""
    out, handler = captured
    handler.setFormatter(logs.JsonFormatter("token"))
    server = await aiohttp_server(token_app(unreachable_redis()))
    secret = f"fam.{new_verifier()}"
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(f"GET /to\x01ken?code={secret} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()

    assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request")
    (line,) = [line for line in json_lines(out) if line["logger"] == "aiohttp.server"]
    assert line["exception"].startswith("InvalidURLError: HTTP 400")
    assert secret not in out.getvalue()


async def one_more_request(http: aiohttp.ClientSession, service: str) -> None:
    """A service writes a request's lines once its event loop has sent the answer, before
    it reads another request: after one more, they are surely in the file."""
    async with http.get(f"{service}/healthz") as r:
        assert r.status == 200


def request_lines(log: Path, request_id: str) -> list[dict[str, Any]]:
    # The log file is appended to across test runs, some of them older than JSON logs.
    lines = [orjson.loads(line) for line in log.read_text().splitlines() if line[:1] == "{"]
    return [line for line in lines if line.get("request_id") == request_id]


async def test_every_line_of_a_request_carries_its_id_and_never_the_query(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    setup = await make_setup(redis)
    trace = new_request_id()
    in_query, in_body = f"fam.{new_verifier()}", f"fam.{new_verifier()}"
    auth = basic_auth_for(setup.client)

    async with http.post(
        f"{stack.token}/token?code={in_query}&access_token={in_query}",
        data={"grant_type": "authorization_code", "code": in_body},
        headers={**auth, "X-Request-ID": trace},
    ) as r:
        assert r.status == 400
        assert r.headers["X-Request-ID"] == trace
    async with http.get(f"{stack.token}/healthz", headers={"X-Request-ID": "bad id!"}) as r:
        assert GENERATED_ID.fullmatch(r.headers["X-Request-ID"])

    await one_more_request(http, stack.token)
    refused, answered = request_lines(TOKEN_LOG, trace)
    # The error middleware's line says why, the request line what was answered.
    assert refused["logger"] == "tessera.web"
    assert "invalid_grant" in refused["message"]
    assert answered["logger"] == "tessera.access"
    assert answered["message"] == "POST /token 400"
    assert answered["method"] == "POST"
    assert answered["route"] == "/token"
    assert answered["path"] == "/token"
    assert answered["status"] == 400
    assert answered["remote"] == "127.0.0.1"
    assert 0 < answered["duration_ms"] < 10_000
    text = TOKEN_LOG.read_text()
    assert in_query not in text
    assert in_body not in text
    assert auth["Authorization"].split()[1] not in text
    assert setup.client.secret is not None
    assert setup.client.secret not in text


async def test_an_issuing_request_is_one_line_naming_the_grant_and_the_client(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    setup = await make_setup(redis, grants=["client_credentials"], redirect_uris=[])
    trace = new_request_id()
    async with http.post(
        f"{stack.token}/token",
        data={"grant_type": "client_credentials", "scope": setup.scope},
        headers={**basic_auth_for(setup.client), "X-Request-ID": trace},
    ) as r:
        assert r.status == 200
        token = (await r.json())["access_token"]

    await one_more_request(http, stack.token)
    (line,) = request_lines(TOKEN_LOG, trace)
    assert line["message"] == "POST /token 200"
    assert line["grant_type"] == "client_credentials"
    assert line["client_id"] == setup.client.client_id
    assert token not in TOKEN_LOG.read_text()


async def test_unmatched_paths_are_logged_by_a_fixed_route_and_a_fingerprint(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    trace = new_request_id()
    async with http.get(f"{stack.token}/nope/x%0Ay", headers={"X-Request-ID": trace}) as r:
        assert r.status == 404
        assert r.headers["X-Request-ID"] == trace

    await one_more_request(http, stack.token)
    (line,) = request_lines(TOKEN_LOG, trace)
    assert (line["route"], line["status"]) == ("unmatched", 404)
    # The path a caller made up may be a credential pasted into the URL: a fingerprint
    # of it as sent (percent-encoded), under the key all services share.
    key = await log_fingerprint_key.shared_key(redis)
    assert line["path"] == fingerprint.with_key(key, "/nope/x%0Ay")


async def test_behind_a_trusted_proxy_the_request_line_names_the_client(
    aiohttp_client: AiohttpClient, configured: Callable[[str], io.StringIO]
) -> None:
    out = configured("json")
    client = await aiohttp_client(token_app(unreachable_redis()), headers=FORWARDED_HTTPS)
    forwarded = {"X-Forwarded-For": "not-an-address-a-secret, 203.0.113.9"}
    other = new_request_id()
    async with client.get("/nowhere", headers={"X-Request-ID": TWICE, **forwarded}) as r:
        assert r.status == 404
    async with client.get("/nowhere", headers={"X-Request-ID": other}) as r:
        assert r.status == 404

    lines = {line["request_id"]: line for line in json_lines(out) if "request_id" in line}
    # The address the trusted proxy (loopback here) saw; never the caller's own text.
    assert lines[TWICE]["remote"] == "127.0.0.1"
    assert lines[TWICE]["client"] == "203.0.113.9"
    assert "client" not in lines[other]
    assert "not-an-address" not in out.getvalue()
