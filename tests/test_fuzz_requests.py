"""Property-based fuzzing of every endpoint of every service: every malformed request is
a 4xx, never a 5xx or a traceback, and costs no memory that stays.

A stack of its own (Redis, the three services, the admin API on the token service's
second port, and the example notes API) gets requests drawn by Hypothesis
(tests/request_strategies.py): any route of any service's router, any method, broken
query strings, bodies that do not match their Content-Type or Content-Encoding or
framing, bad credentials, cookies and forwarded headers. Whatever comes:

- no answer is a 5xx or shows a traceback, and no service logs an ERROR or a traceback;
- memory stays flat: after a warm-up round, a second round of other requests leaves no
  key in Redis without a TTL, none beyond a handful of rate-limit windows but the session
  or interaction each answer handed out, and no service's resident memory grows by more
  than allocator noise.

Bounded for ``make test``: TESSERA_FUZZ_EXAMPLES requests a round (default 300), drawn
from fixed seeds, so every run sends the same requests; set it higher for a longer hunt.
The summary line (``pytest -s``) counts the 5xx answers.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import redis as redis_sync
from hypothesis import HealthCheck, Phase, given, seed, settings
from multidict import CIMultiDict, CIMultiDictProxy
from redis.asyncio import Redis
from tessera_resource_server import ResourceServerSettings
from yarl import URL

from devtools.devrun import example_api_env
from devtools.local_processes import (
    ProcessGroup,
    ensure_signing_key,
    free_port,
    service_env,
    start_module,
    start_redis,
)
from services.admin.app import create_app as admin_app
from services.authorize.app import create_app as authorize_app
from services.example_api.app import create_app as notes_app
from services.introspect.app import create_app as introspect_app
from services.token.app import create_app as token_app
from shared.config.settings import Settings
from shared.storage import keys
from tests.records import REDIRECT_URI, make_client, make_resource_server, make_scope
from tests.replies import SESSION_COOKIE, basic_auth_for
from tests.request_strategies import FuzzRequest, Route, Vocabulary, requests, routes_of
from tests.resource_servers import notes_scopes
from tests.secrets_ledger import SECRETS_USED
from tests.stack import ADMIN_TOKEN, ARTIFACTS, GENEROUS_RATE_LIMITS, Stack, start_stack

EXAMPLES = int(os.environ.get("TESSERA_FUZZ_EXAMPLES", "300"))
LOG_PREFIX = "fuzz-"
# Keys the second round may add beyond the sessions and interactions it was handed:
# rate-limit windows, one per limit and forwarded address the strategies use.
MAX_NEW_KEYS = 32
# Resident memory a service may gain over the second round: the allocator's high-water
# mark still rises by a few MiB (the authorize service levels off near 74 MB after some
# 5,000 requests), and then 4 KiB a request, which a leak of more would pass on a
# long run.
RSS_NOISE = 8 * 1024 * 1024
RSS_PER_REQUEST = 4 * 1024
# aiohttp's client_max_size: a longer body is refused with 413.
MAX_BODY = 1024 * 1024
# Bodies that never end: the client gives up, and the server owes it no answer.
CUT_SHORT = ("short-length", "cut-chunked")


@dataclass(frozen=True)
class FuzzStack:
    stack: Stack
    routes: list[Route]
    vocabulary: Vocabulary
    # Process ids by service name, for their resident memory.
    pids: dict[str, int]


async def _register(stack: Stack) -> tuple[Vocabulary, dict[str, str]]:
    """Clients, scopes and a browser session the requests may name, so that some get
    past the first check of a handler; and the example API's own client."""
    client = Redis.from_url(stack.redis_url)
    try:
        await notes_scopes(client)
        scope = await make_scope(client)
        confidential = await make_client(client, [scope])
        public = await make_client(client, [scope], client_type="public")
        api = await make_resource_server(client, ["notes:read", "notes:write"], name="Notes API")
    finally:
        await client.aclose()
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{stack.authorize}/login", params={"next": "/connected-apps"}) as page,
    ):
        session = page.cookies[SESSION_COOKIE].value
        # A change through the admin API: its audit stream is there before the rounds,
        # as the stream of a running server is (it is capped, never expires).
        async with http.post(
            f"{stack.admin}/v1/scopes",
            json={"name": "fuzz:audited"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as created:
            assert created.status == 201
    SECRETS_USED.add(session)
    assert api.secret
    vocabulary = Vocabulary(
        client_ids=[confidential.client_id, public.client_id, api.client_id],
        credentials=[
            basic_auth_for(confidential)["Authorization"],
            basic_auth_for(api)["Authorization"],
            f"Bearer {ADMIN_TOKEN}",
        ],
        cookies=[f"{SESSION_COOKIE}={session}"],
        redirect_uris=[REDIRECT_URI],
        scopes=[scope, "notes:read"],
    )
    return vocabulary, {"api_id": api.client_id, "api_secret": api.secret}


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzStack]:
    for old in (ARTIFACTS / "logs").glob(f"{LOG_PREFIX}*.log"):
        old.unlink()
    group = ProcessGroup()
    try:
        redis_url = start_redis(
            group, free_port(), tmp_path_factory.mktemp("fuzz-redis"), persistent=False
        )
        keys_dir = ensure_signing_key(tmp_path_factory.mktemp("fuzz-keys"))
        extra = {
            "TESSERA_ADMIN_TOKEN": ADMIN_TOKEN,
            # Forwarded headers are believed from loopback, so the fuzzer's count.
            "TESSERA_TRUSTED_PROXIES": "127.0.0.1",
            # The fuzzer and the example API's calls to /introspect share one address:
            # limits it never reaches (tests/test_rate_limits.py tries them).
            **GENEROUS_RATE_LIMITS,
        }
        stack = start_stack(group, redis_url, keys_dir, log_prefix=LOG_PREFIX, extra_env=extra)
        vocabulary, api = asyncio.run(_register(stack))
        urls = {
            "authorize": stack.authorize,
            "token": stack.token,
            "introspect": stack.introspect,
            "admin": stack.admin,
        }
        api_env = example_api_env(urls, api)
        urls["example_api"] = start_module(
            group,
            "services.example_api",
            free_port(),
            api_env,
            log=ARTIFACTS / "logs" / f"{LOG_PREFIX}example_api.log",
        )
        # The services' own routers, built with the same settings: every route is fuzzed,
        # a new one too, without anyone listing it here.
        settings = Settings.from_env(
            service_env(redis_url, {"authorize": 0, "token": 0, "introspect": 0}, keys_dir) | extra
        )
        apps = {
            "authorize": authorize_app(settings),
            "token": token_app(settings),
            "introspect": introspect_app(settings),
            "admin": admin_app(settings),
            "example_api": notes_app(ResourceServerSettings.from_env(api_env)),
        }
        routes = [route for name, app in apps.items() for route in routes_of(name, urls[name], app)]
        # Started after Redis, in this order; the admin API is the token service's process.
        processes = [process.pid for process in group.processes[1:]]
        pids = dict(
            zip(["authorize", "token", "introspect", "example_api"], processes, strict=True)
        )
        yield FuzzStack(stack, routes, vocabulary, pids)
    finally:
        group.stop()


@dataclass(frozen=True)
class Outcome:
    request: FuzzRequest
    status: int | None
    problem: str = ""
    # What the answer handed the client that Redis keeps for it.
    session: bool = False
    interaction: bool = False


def _judge(request: FuzzRequest, status: int, headers: CIMultiDictProxy[str], body: str) -> Outcome:
    cookies = headers.getall("Set-Cookie", [])
    session = any(c.startswith(f"{SESSION_COOKIE}=") and "Max-Age=0" not in c for c in cookies)
    interaction = "interaction=" in headers.get("Location", "")
    problem = ""
    if status >= 500:
        problem = f"{status}: {body[:200]}"
    elif "Traceback" in body:
        problem = "a traceback in the answer"
    return Outcome(request, status, problem, session=session, interaction=interaction)


async def _send(http: aiohttp.ClientSession, request: FuzzRequest) -> Outcome:
    if request.framing != "aiohttp":
        return await _send_raw(request)
    try:
        async with http.request(
            request.method,
            URL(request.url, encoded=True),
            headers=request.headers,
            # A stream: aiohttp warns that a large bytes body would hold up its loop.
            data=io.BytesIO(request.body) if request.body else None,
            allow_redirects=False,
            skip_auto_headers=["Content-Type"],
        ) as response:
            body = (await response.read()).decode(errors="replace")
            return _judge(request, response.status, response.headers, body)
    except aiohttp.ClientResponseError as exc:
        # An answer aiohttp would not take: aiohttp's own refusal of a request it could
        # not parse carries a body even when the request was a HEAD.
        return _judge(request, exc.status, CIMultiDictProxy(CIMultiDict()), exc.message)
    except aiohttp.ClientError as exc:
        return Outcome(request, None, f"no answer: {type(exc).__name__}: {exc}")


def _framed(request: FuzzRequest) -> bytes:
    """The body with its framing header, as ``request.framing`` says."""
    body = request.body
    if request.framing == "length":
        return f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    if request.framing == "short-length":  # announces more than comes
        return f"Content-Length: {len(body) + 10}\r\n\r\n".encode() + body
    chunk = f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b""
    ending = {"chunked": b"0\r\n\r\n", "bad-chunked": b"zz\r\n\r\n", "cut-chunked": b""}
    return b"Transfer-Encoding: chunked\r\n\r\n" + chunk + ending[request.framing]


async def _send_raw(request: FuzzRequest) -> Outcome:
    """The request written byte by byte: header values in Latin-1, so that a character
    past ASCII arrives as an octet that is no UTF-8."""
    url = URL(request.url, encoded=True)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        lines = [f"{request.method} {url.raw_path_qs} HTTP/1.1", f"Host: {url.host}:{url.port}"]
        lines += [f"{name}: {value}" for name, value in request.headers.items()]
        head = "\r\n".join([*lines, "Connection: close", ""]).encode("latin-1")
        writer.write(head + _framed(request))
        await writer.drain()
        if request.framing in CUT_SHORT:
            writer.write_eof()  # the client stops in the middle of its body
        answer = await _answer(reader, request.method)
    except OSError as exc:
        if request.framing in CUT_SHORT or len(request.body) > MAX_BODY:
            return Outcome(request, None)  # refused while sending: the server may hang up
        return Outcome(request, None, f"no answer: {type(exc).__name__}: {exc}")
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    match = re.match(r"HTTP/1\.[01] (\d{3})", status_line)
    if match is None:
        if request.framing in CUT_SHORT:
            return Outcome(request, None)  # the body never ended: no answer is due
        return Outcome(request, None, f"no status line: {answer[:100]!r}")
    fields = [line.partition(": ") for line in header_lines if ": " in line]
    headers = CIMultiDict((name, value) for name, _, value in fields)
    return _judge(request, int(match.group(1)), CIMultiDictProxy(headers), body.decode("latin-1"))


async def _answer(reader: asyncio.StreamReader, method: str) -> bytes:
    """The answer's head and up to 64 KiB of its body. Not until the server hangs up:
    after answering, aiohttp reads what is left of a request body for up to 10 s."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    except asyncio.IncompleteReadError as exc:
        return exc.partial
    length = re.search(rb"\r\nContent-Length: (\d+)", head, re.I)
    if method == "HEAD" or length is None:
        return head
    return head + await asyncio.wait_for(reader.read(min(int(length.group(1)), 65536)), 30)


def _fuzz_round(fuzz: FuzzStack, round_seed: int, examples: int) -> list[Outcome]:
    """``examples`` requests drawn from ``round_seed``, each on a connection of its own."""
    outcomes: list[Outcome] = []
    with asyncio.Runner() as runner:
        http = runner.run(_client())

        # Every outcome is kept rather than failing at the first, so that a run counts
        # them all: no shrinking, no example database.
        @seed(round_seed)
        @settings(
            max_examples=examples,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(request=requests(fuzz.routes, fuzz.vocabulary))
        def send(request: FuzzRequest) -> None:
            outcomes.append(runner.run(_send(http, request)))

        try:
            send()
        finally:
            runner.run(http.close())
    return outcomes


async def _client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(force_close=True),
        timeout=aiohttp.ClientTimeout(total=30),
    )


@dataclass(frozen=True)
class Footprint:
    keys: dict[str, int]  # key -> TTL in seconds (-1: none)
    used_memory: int
    rss: dict[str, int]


def _rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    assert match, f"no VmRSS for process {pid}"
    return int(match.group(1)) * 1024


def _footprint(fuzz: FuzzStack) -> Footprint:
    client = redis_sync.Redis.from_url(fuzz.stack.redis_url, decode_responses=True)
    try:
        found = {key: client.ttl(key) for key in client.scan_iter(count=1000)}
        used = int(client.info("memory")["used_memory"])
    finally:
        client.close()
    return Footprint(found, used, {name: _rss(pid) for name, pid in fuzz.pids.items()})


def _log_problems() -> list[str]:
    problems = []
    for log in sorted((ARTIFACTS / "logs").glob(f"{LOG_PREFIX}*.log")):
        for number, line in enumerate(log.read_text(errors="replace").splitlines(), 1):
            if re.search(r'"level":"(ERROR|CRITICAL)"| (ERROR|CRITICAL) |Traceback', line):
                problems.append(f"{log.name}:{number}: {line[:300]}")
    return problems


def test_no_request_gets_a_5xx_or_a_traceback_and_memory_stays_flat(
    fuzz_stack: FuzzStack,
) -> None:
    services = {route.service for route in fuzz_stack.routes}
    assert services == {"authorize", "token", "introspect", "admin", "example_api"}
    assert any(route.path == "/v1/tokens" for route in fuzz_stack.routes)

    warm_up = _fuzz_round(fuzz_stack, 1, EXAMPLES)
    before = _footprint(fuzz_stack)
    second = _fuzz_round(fuzz_stack, 2, EXAMPLES)
    after = _footprint(fuzz_stack)

    outcomes = warm_up + second
    failures = [outcome for outcome in outcomes if outcome.problem]
    logged = _log_problems()
    server_errors = sum(1 for outcome in outcomes if (outcome.status or 0) >= 500)
    print(
        f"\nfuzzed {len(outcomes)} requests: {server_errors} answered with a 5xx, "
        f"{len(failures)} problems, {len(logged)} ERROR or traceback log lines; Redis "
        f"used_memory {before.used_memory} -> {after.used_memory} bytes, keys "
        f"{len(before.keys)} -> {len(after.keys)}"
    )
    assert failures == [], "\n".join(
        f"{o.problem}  <-  {o.request.summary()}" for o in failures[:20]
    )
    assert logged == [], "\n".join(logged[:20])

    added = {key: ttl for key, ttl in after.keys.items() if key not in before.keys}
    assert all(ttl > 0 for ttl in added.values()), f"keys without a TTL: {added}"
    sessions = [key for key in added if key.startswith(keys.session(""))]
    interactions = [key for key in added if key.startswith(keys.interaction(""))]
    # The anonymous session or pending request an answer handed out (its cookie, or its
    # id in the Location), which lives until its TTL; nothing else beyond the windows.
    assert len(sessions) <= sum(outcome.session for outcome in second)
    assert len(interactions) <= sum(outcome.interaction for outcome in second)
    others = set(added) - set(sessions) - set(interactions)
    assert len(others) <= MAX_NEW_KEYS, sorted(others)
    grown = {name: after.rss[name] - before.rss[name] for name in after.rss}
    bound = RSS_NOISE + RSS_PER_REQUEST * len(second)
    assert all(growth <= bound for growth in grown.values()), (grown, bound)
