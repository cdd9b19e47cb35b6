"""Keyed fingerprints of what callers send (shared.security.fingerprint): one key for every process,
made once in Redis; a key of its own while Redis is away at start-up; and the logs of an
unexpected failure and of an unusual method, which name what was sent by fingerprint."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from pytest_aiohttp import AiohttpClient

from devtools.local_processes import ProcessGroup, free_port, start_redis
from services.token.app import create_app as token_app
from shared.security import fingerprint
from shared.storage import log_fingerprint_key
from shared.storage.redis_store import connect
from shared.web import log_fingerprints, logs
from tests.stack import FORWARDED_HTTPS, production_settings, unreachable_redis

FINGERPRINT = re.compile(r"fp:[A-Za-z0-9_-]{12}")


@pytest.fixture
def processes() -> Iterator[ProcessGroup]:
    group = ProcessGroup()
    yield group
    group.stop()


@pytest.fixture
def own_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process starts with a key of its own, and gets back the one it had after."""
    monkeypatch.setattr(
        fingerprint, "_key", fingerprint._Key(secrets.token_bytes(32), fingerprint.LOCAL_PREFIX)
    )


def test_a_fingerprint_is_short_stable_and_keyed() -> None:
    key, other = secrets.token_bytes(32), secrets.token_bytes(32)
    password = "hunter22"

    assert FINGERPRINT.fullmatch(fingerprint.with_key(key, password))
    assert fingerprint.with_key(key, password) == fingerprint.with_key(key, password)
    assert fingerprint.with_key(key, password) != fingerprint.with_key(key, password + "!")
    # Without the key, the fingerprint of a guess says nothing about the password.
    assert fingerprint.with_key(key, password) != fingerprint.with_key(other, password)
    assert fingerprint.with_key(key, "\udcff") != ""  # never raises, whatever it is given


def test_a_value_is_shown_only_when_known() -> None:
    assert fingerprint.shown("authorization_code", {"authorization_code"}) == ("authorization_code")
    assert fingerprint.shown("s3cret-value", {"authorization_code"}) == fingerprint.of(
        "s3cret-value"
    )


def test_scrub_replaces_long_values_and_leaves_short_ones() -> None:
    secret = secrets.token_urlsafe(32)
    text = f"ValueError: cannot use {secret} with GET"

    scrubbed = fingerprint.scrub(text, [secret, "GET", "use"])

    assert scrubbed == f"ValueError: cannot use {fingerprint.of(secret)} with GET"


async def test_every_process_gets_the_key_the_first_one_made(
    processes: ProcessGroup, tmp_path: Path
) -> None:
    redis = connect(start_redis(processes, free_port(), tmp_path, persistent=False))
    try:
        # Services starting at once: one makes the key, every one reads the same.
        found = await asyncio.gather(*(log_fingerprint_key.shared_key(redis) for _ in range(8)))
        assert len(set(found)) == 1
        assert len(found[0]) == 43  # 32 random bytes, base64url
        # A restart reads it again: fingerprints stay comparable (and the key never
        # expires: tests/test_storage.py).
        assert await log_fingerprint_key.shared_key(redis) == found[0]
    finally:
        await redis.aclose()


async def test_without_redis_at_start_a_process_uses_its_own_key_until_redis_answers(
    aiohttp_client: AiohttpClient,
    processes: ProcessGroup,
    tmp_path: Path,
    own_key: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(log_fingerprints, "RETRY_SECONDS", 0.05)
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    client = await aiohttp_client(
        token_app(production_settings(redis_url)), headers=FORWARDED_HTTPS
    )
    assert "log fingerprints are this process's own (fp-local:)" in caplog.text

    with caplog.at_level(logging.INFO, logger=logs.ACCESS_LOGGER):
        assert (await client.get("/nowhere")).status == 404
    (line,) = [r for r in caplog.records if r.name == logs.ACCESS_LOGGER]
    local = getattr(line, logs.FIELDS_ATTRIBUTE)["path"]
    assert local.startswith("fp-local:")

    start_redis(processes, port, tmp_path, persistent=False)
    deadline = time.monotonic() + 30
    while fingerprint.of("/nowhere").startswith("fp-local:"):
        assert time.monotonic() < deadline, "the shared key was never read"
        await asyncio.sleep(0.05)

    redis = connect(redis_url)
    try:
        shared = await log_fingerprint_key.shared_key(redis)
    finally:
        await redis.aclose()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=logs.ACCESS_LOGGER):
        assert (await client.get("/nowhere")).status == 404
    (line,) = [r for r in caplog.records if r.name == logs.ACCESS_LOGGER]
    assert getattr(line, logs.FIELDS_ATTRIBUTE)["path"] == fingerprint.with_key(shared, "/nowhere")


async def test_an_unexpected_failure_is_logged_with_its_frames_not_what_was_sent(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception's message may quote what the caller sent (a misplaced secret among
    it): the stack trace keeps its frames and names that by its fingerprint."""
    app = token_app(unreachable_redis())
    in_form, in_path = secrets.token_urlsafe(32), secrets.token_urlsafe(32)

    async def fails(request: web.Request) -> web.Response:
        value = (await request.post())["value"]
        assert isinstance(value, str)
        raise ValueError(f"cannot use {value} at {request.match_info['name']}")

    app.router.add_post("/fails/{name}", fails)
    client = await aiohttp_client(app, headers=FORWARDED_HTTPS)

    with caplog.at_level(logging.INFO):
        answer = await client.post(f"/fails/{in_path}", data={"value": in_form})
        assert answer.status == 500
        assert (await answer.json())["error"] == "server_error"

    (failed,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert failed.getMessage() == "POST /fails/{name} failed"
    assert failed.exc_info is not None  # a stack trace, as every log handler sees it
    # What the services write (logs.configure installs these formatters), in JSON...
    entry = orjson.loads(logs.JsonFormatter("token").format(failed))
    trace = entry["exception"]
    assert trace.startswith("Traceback (most recent call last):")
    assert 'File "' in trace and "in fails" in trace
    named = f"ValueError: cannot use {fingerprint.of(in_form)} at {fingerprint.of(in_path)}"
    assert trace.endswith(named)
    # ... and as text, every line of the request (aiohttp's own access log, which the
    # services turn off, aside).
    text = "\n".join(
        logs.TextFormatter("token").format(r) for r in caplog.records if r.name != "aiohttp.access"
    )
    assert named in text
    assert in_form not in text + str(entry)
    assert in_path not in text + str(entry)


def test_an_unusual_method_is_logged_as_a_fingerprint() -> None:
    """aiohttp's own parser refuses methods it does not know, but another (its pure
    Python one, a proxy in front) need not."""
    secret = secrets.token_hex(16).upper()  # a method is upper case
    assert logs.logged_method(make_mocked_request(secret, "/token")) == fingerprint.of(secret)
    assert logs.logged_method(make_mocked_request("PATCH", "/token")) == "PATCH"
