"""Stopping a service as Kubernetes does: SIGTERM fails readiness at once, the service
keeps answering for the drain period, then stops listening, finishes the request in
flight and exits 0. SIGINT, and a second SIGTERM, stop it without the wait."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import orjson
import pytest
from redis.asyncio import Redis

from devtools.local_processes import ProcessGroup, free_port, start_service
from shared.config.settings import Settings, SettingsError
from tests.flows import introspect, obtain_code
from tests.records import REDIRECT_URI, make_resource_server, make_setup
from tests.replies import basic_auth_for
from tests.stack import ARTIFACTS, Stack

DRAIN_SECONDS = 1
# The request id of the request in flight (a UUID: a form a caller's id is kept in).
IN_FLIGHT_ID = "5f0c7d2e-9a41-4b8e-b1a6-0d3c2e7f9a10"
# Longer than the drain, so a request waiting on Redis is in flight when it ends; shorter
# than this test's Redis deadline (REDIS_TIMEOUT_MS), so that request then succeeds.
REDIS_PAUSE_MS = 3500
REDIS_TIMEOUT_MS = 6000


def service_settings(stack: Stack, drain_seconds: int) -> dict[str, str]:
    """A further token service on the test stack's Redis, with its own drain period."""
    return {
        "REDIS_URL": stack.redis_url,
        "TESSERA_ISSUER": stack.issuer,
        "TESSERA_INSECURE_LOOPBACK": "1",
        "TESSERA_DRAIN_SECONDS": str(drain_seconds),
        "TESSERA_REDIS_TIMEOUT_MS": str(REDIS_TIMEOUT_MS),
    }


@pytest.fixture
def group() -> Iterator[ProcessGroup]:
    processes = ProcessGroup()
    yield processes
    processes.stop()


async def start_token_service(
    group: ProcessGroup, stack: Stack, drain_seconds: int, log: Path
) -> tuple[subprocess.Popen[bytes], int]:
    """A further token service on the stack's Redis; its log starts afresh."""

    def start() -> int:
        port = free_port()
        log.unlink(missing_ok=True)
        start_service(group, "token", port, service_settings(stack, drain_seconds), log)
        return port

    port = await asyncio.to_thread(start)
    return group.processes[-1], port


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, str]]:
    async with http.get(url) as r:
        return r.status, await r.json()


async def until_refused(port: int, within: float) -> float:
    """Wait until the port refuses connections; returns when, on the monotonic clock."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            return time.monotonic()
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.05)
    raise AssertionError(f"port {port} still accepted connections after {within} s")


def parse_http_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split(" ")[1]), headers, body


async def test_sigterm_drains_then_finishes_the_request_in_flight(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, group: ProcessGroup
) -> None:
    setup = await make_setup(redis)
    api = await make_resource_server(redis, [setup.scope])
    code = await obtain_code(http, stack, setup)
    log = ARTIFACTS / "logs" / "shutdown-token.log"
    process, port = await start_token_service(group, stack, DRAIN_SECONDS, log)
    base = f"http://127.0.0.1:{port}"

    # A token request whose body is still on its way when SIGTERM arrives.
    body = urlencode(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    ).encode()
    head = (
        f"POST /token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Authorization: {basic_auth_for(setup.client)['Authorization']}\r\n"
        f"X-Request-ID: {IN_FLIGHT_ID}\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + body[:10])
        await writer.drain()

        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()

        # Not ready any more, at once, while it still answers new connections.
        status, answer = await get(http, f"{base}/readyz")
        while status == 200 and time.monotonic() - signalled < 1:
            status, answer = await get(http, f"{base}/readyz")
        assert (status, answer) == (503, {"status": "draining"})
        assert await get(http, f"{base}/healthz") == (200, {"status": "ok"})

        # Made slow honestly: Redis stops answering for a while (CLIENT PAUSE), so once
        # its body is complete the request waits on its first Redis call past the drain.
        await redis.client_pause(REDIS_PAUSE_MS, all=True)
        paused = time.monotonic()
        writer.write(body[10:])
        await writer.drain()

        # After the drain it stops listening, and not before; the request is still
        # waiting for Redis, and the process for the request.
        refused = await until_refused(port, within=DRAIN_SECONDS + 3)
        assert refused - signalled >= DRAIN_SECONDS - 0.1
        assert refused - paused < REDIS_PAUSE_MS / 1000, "the pause ended before the drain"
        assert process.poll() is None, "the service left with a request in flight"

        status, headers, payload = parse_http_response(await reader.read())
    finally:
        writer.close()
        await writer.wait_closed()

    assert status == 200, payload
    assert headers["connection"] == "close"
    assert headers["x-request-id"] == IN_FLIGHT_ID
    token = orjson.loads(payload)["access_token"]
    assert await asyncio.to_thread(process.wait, 10) == 0
    info = await introspect(http, stack, api, token)
    assert info.body["active"] is True

    text = log.read_text()
    lines = [orjson.loads(line) for line in text.splitlines()]
    served = [line for line in lines if line.get("request_id") == IN_FLIGHT_ID]
    assert [(line["route"], line["status"]) for line in served if "route" in line] == [
        ("/token", 200)
    ]
    assert any(line["message"].startswith("SIGTERM: not ready") for line in lines)
    assert lines[-1]["message"] == "stopped"
    assert code not in text
    assert token not in text


@pytest.mark.parametrize(
    ("drain_seconds", "signals"),
    [
        pytest.param(30, [signal.SIGINT], id="sigint-skips-the-drain"),
        pytest.param(30, [signal.SIGTERM, signal.SIGTERM], id="second-sigterm-ends-it"),
        pytest.param(0, [signal.SIGTERM], id="drain-of-0"),
    ],
)
async def test_stopping_without_the_drain_is_quick(
    stack: Stack,
    http: aiohttp.ClientSession,
    group: ProcessGroup,
    drain_seconds: int,
    signals: list[signal.Signals],
) -> None:
    log = ARTIFACTS / "logs" / "shutdown-quick-token.log"
    process, port = await start_token_service(group, stack, drain_seconds, log)
    started = time.monotonic()
    first, *more = signals
    process.send_signal(first)
    if more:  # the first SIGTERM has begun the drain
        await asyncio.sleep(0.3)
        assert (await get(http, f"http://127.0.0.1:{port}/readyz"))[0] == 503
    for signum in more:
        process.send_signal(signum)

    assert await asyncio.to_thread(process.wait, 10) == 0
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("value", ["-1", "soon", "1.5"])
def test_a_bad_drain_period_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="TESSERA_DRAIN_SECONDS"):
        Settings.from_env(
            {"TESSERA_ISSUER": "https://id.example.com", "TESSERA_DRAIN_SECONDS": value}
        )


def test_the_drain_period_defaults_to_ten_seconds_and_may_be_zero() -> None:
    issuer = {"TESSERA_ISSUER": "https://id.example.com"}
    assert Settings.from_env(issuer).drain_seconds == 10
    assert Settings.from_env(issuer | {"TESSERA_DRAIN_SECONDS": "0"}).drain_seconds == 0
