"""The services under test: started as processes on free loopback ports, as ``make run``
starts them (the session's stack is in tests/conftest.py), and the settings the suite
gives them and the services it runs in this process."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from redis.asyncio import Redis

from devtools.local_processes import (
    SERVICES,
    ProcessGroup,
    free_port,
    service_env,
    start_service,
)
from shared.config.settings import WEAK_HASHING_FOR_TESTS, Settings
from shared.domain.password_hashing import PasswordHashing
from shared.storage.redis_store import connect
from shared.web import logs
from tests.secrets_ledger import SECRETS_USED

# The test stack's settings (tests/conftest.py). The refresh grace is the shortest the
# setting allows (whole seconds), so the tests that wait past it wait little.
REFRESH_REUSE_GRACE = 1


# argon2id as cheap as RFC 9106 §3.1 allows (one pass, 8 KiB, one lane): the suite's
# users protect nothing, and a thousand hashes and checks at the production parameters
# would take minutes. Stacks check unknown usernames against a hash of the same.
TEST_PASSWORD_HASHING = PasswordHashing(time_cost=1, memory_kib=8, parallelism=1)


def password_hashing_env(hashing: PasswordHashing) -> dict[str, str]:
    """The settings (TESSERA_PASSWORD_HASH_*) of ``hashing``."""
    return {
        "TESSERA_PASSWORD_HASH_TIME_COST": str(hashing.time_cost),
        "TESSERA_PASSWORD_HASH_MEMORY_KIB": str(hashing.memory_kib),
        "TESSERA_PASSWORD_HASH_PARALLELISM": str(hashing.parallelism),
        WEAK_HASHING_FOR_TESTS: "1",
    }


ADMIN_TOKEN = "test-admin-token-" + "x" * 32
SECRETS_USED.add(ADMIN_TOKEN)


@dataclass(frozen=True)
class Stack:
    redis_url: str
    issuer: str
    authorize: str
    token: str
    introspect: str
    signing_keys: Path | None = None
    # The admin API's base URL (the token service's second port); "" when it is off.
    admin: str = ""

    @property
    def revoke(self) -> str:
        return f"{self.token}/revoke"

    @property
    def metadata(self) -> str:
        return f"{self.authorize}/.well-known/oauth-authorization-server"


ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
LOGS = ARTIFACTS / "logs"
# pytest-xdist runs the suite in worker processes (pyproject.toml), each a session with a
# stack of its own: each session stack logs to files of its own ("gw0-token.log"). A test
# module, and so a stack a module starts, runs in one worker (--dist loadfile).
SESSION_LOG_PREFIX = (
    f"{os.environ['PYTEST_XDIST_WORKER']}-" if "PYTEST_XDIST_WORKER" in os.environ else ""
)


def session_log(name: str) -> Path:
    """The log file of the session stack's service ``name``."""
    return LOGS / f"{SESSION_LOG_PREFIX}{name}.log"


def start_stack(
    group: ProcessGroup,
    redis_url: str,
    signing_keys: Path,
    *,
    log_prefix: str = "",
    extra_env: dict[str, str] | None = None,
    hashing: PasswordHashing = TEST_PASSWORD_HASHING,
) -> Stack:
    """The three services as processes on free loopback ports, against ``redis_url``,
    as ``make run`` starts them, checking passwords hashed with ``hashing``; their logs
    in test-artifacts/logs/."""
    LOGS.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in (*SERVICES, "admin")}
    env = {
        **service_env(redis_url, ports, signing_keys),
        **password_hashing_env(hashing),
        **(extra_env or {}),
    }
    urls = {
        name: start_service(group, name, ports[name], env, log=LOGS / f"{log_prefix}{name}.log")
        for name in SERVICES
    }
    return Stack(
        redis_url=redis_url,
        issuer=env["TESSERA_ISSUER"],
        authorize=urls["authorize"],
        token=urls["token"],
        introspect=urls["introspect"],
        signing_keys=signing_keys,
        admin=f"http://127.0.0.1:{ports['admin']}",
    )


def connect_single_server(redis_url: str) -> Redis:
    """redis-py's client of the Redis at ``redis_url``, as Tessera's CLI connects: a single
    server, which every stack the tests start runs on but the topologies' own
    (tests/test_redis_topologies.py), so the server's own commands (CONFIG, INFO) apply."""
    client = connect(redis_url)
    assert isinstance(client, Redis), redis_url
    return client


# A service's application factory (``create_app`` of services/<name>/app.py), for a
# service run in this process.
CreateApp = Callable[[Settings], web.Application]


# A service in this process is reached as behind a TLS-terminating ingress on loopback:
# its settings trust the loopback proxy, its test clients send this header.
FORWARDED_HTTPS = {"X-Forwarded-Proto": "https"}


# The whole suite comes from one address: per-address limits it never reaches. The
# limits' own tests run stacks of their own (tests/test_anonymous_requests.py,
# tests/test_login_throttle.py).
GENEROUS_RATE_LIMITS = {
    "TESSERA_AUTHORIZE_RATE": "1000000/60",
    "TESSERA_LOGIN_PAGE_RATE": "1000000/60",
    "TESSERA_CLIENT_AUTH_FAILURE_RATE": "1000000/60",
    # Failed sign-ins of the whole run would count together.
    "TESSERA_LOGIN_ADDRESS_RATE": "off",
}


def production_settings(redis_url: str, **env: str) -> Settings:
    """Production settings (https issuer, Require HTTPS) for a service in this process."""
    return Settings.from_env(
        {
            "TESSERA_ISSUER": "https://id.example.com",
            "REDIS_URL": redis_url,
            "TESSERA_TRUSTED_PROXIES": "127.0.0.1,::1",
            # In-process services share the suite's Redis and its loopback address.
            **GENEROUS_RATE_LIMITS,
            **env,
        }
    )


def unreachable_redis() -> Settings:
    """Settings for a service in this process whose Redis never answers."""
    return production_settings(f"redis://127.0.0.1:{free_port()}/0")


def line_fields(record: logging.LogRecord) -> dict[str, object]:
    """The structured fields of a line a service in this process logged (a record of
    pytest's caplog): what its JSON line holds beside the message (shared/web/logs.py)."""
    fields: dict[str, object] = getattr(record, logs.FIELDS_ATTRIBUTE)
    return fields


async def logged_lines(http: aiohttp.ClientSession, url: str, name: str) -> list[dict[str, Any]]:
    """The JSON lines the session stack's service ``name``, at ``url``, has logged so far.
    A service writes a request's lines once it has answered, before it reads another
    request: after one more, they are surely in the file (appended to across runs)."""
    async with http.get(f"{url}/healthz") as r:
        assert r.status == 200
    text = session_log(name).read_text()
    return [orjson.loads(line) for line in text.splitlines() if line[:1] == "{"]


def security_events_of(lines: list[dict[str, Any]], family: str) -> list[str]:
    """The security events (``tessera.security``) among ``lines`` about one grant family."""
    return [
        line["event"]
        for line in lines
        if line.get("logger") == "tessera.security" and line.get("family") == family
    ]
