"""A burst: 1,000 requests released at once at each service, as when many clients start
together or a load balancer hands a fresh replica its share. Reported, never judged; the
aim is zero 5xx.

The 1,000 connections are opened first (with GET /healthz, which touches no Redis), so the
burst measures how a service answers 1,000 requests in flight, not how fast it accepts
connections. Latency counts from the release, as the clients see it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from bench import stack
from bench.answers import (
    Answer,
    Request,
    client_credentials,
    introspection,
    ms,
    send,
    statuses_text,
    summary,
)
from bench.fixtures import REDIRECT_URI, SCOPE, VERIFIER, Fixtures
from shared.security import pkce

SIZE = 1000
TIMEOUT = aiohttp.ClientTimeout(total=30)  # bounds a request stuck in a backlog or a queue


def requests(urls: dict[str, str], made: Fixtures, active: str) -> dict[str, Request]:
    """By service: its hot request, valid for the bench's clients. ``active``: an opaque
    access token that stays active."""
    authorize = {
        "response_type": "code",
        "client_id": made.app.client.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "state": "bench",
        "code_challenge": pkce.s256(VERIFIER),
        "code_challenge_method": "S256",
    }
    return {
        "token": client_credentials(urls, made),
        "introspect": introspection(urls, made, active),
        # A valid request: the approval page, or (Tessera, with no session) a redirect to
        # sign in.
        "authorize": Request(
            "authorize",
            "GET",
            f"{urls['authorize']}/authorize",
            params=authorize,
            ok_statuses=frozenset({200, 302, 303}),
        ),
    }


async def one_service(base_url: str, request: Request, size: int) -> dict[str, Any]:
    created = 0

    async def counted(*_: object) -> None:
        nonlocal created
        created += 1

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(counted)
    connector = aiohttp.TCPConnector(limit=size)
    async with aiohttp.ClientSession(
        connector=connector, timeout=TIMEOUT, trace_configs=[trace]
    ) as session:
        # Every request starts its connection before any finishes, so this opens `size`.
        health = Request("healthz", "GET", f"{base_url}/healthz")
        warm = await asyncio.gather(*(send(session, health, time.monotonic()) for _ in range(size)))
        opened = created
        released = asyncio.Event()
        start: list[float] = []

        async def one() -> Answer:
            await released.wait()
            return await send(session, request, start[0])

        tasks = [asyncio.create_task(one()) for _ in range(size)]
        await asyncio.sleep(0.5)  # every task waiting, the warm-up's last bytes settled
        start.append(time.monotonic())
        released.set()
        answers = await asyncio.gather(*tasks)
    return {
        "request": f"{request.method} {request.url.removeprefix(base_url)} ({request.kind})",
        **summary(answers),
        "connections_opened_first": opened,
        "warmup_failed": sum(1 for a in warm if not a.ok),
        "connections_opened_during": created - opened,
    }


async def run(tessera: stack.Tessera, made: Fixtures, active: str) -> dict[str, Any]:
    """One burst per service, one service after the other."""
    services: dict[str, Any] = {}
    for service, request in requests(tessera.urls, made, active).items():
        figures = await one_service(tessera.urls[service], request, SIZE)
        figures["peak_rss_mib"] = stack.peak_rss_mib(tessera.pids[service])
        services[service] = figures
        print(
            f"burst  {service:10} {statuses_text(figures['statuses'])}  "
            f"p50 {ms(figures['p50_ms'])} ms  p99 {ms(figures['p99_ms'])} ms  "
            f"max {ms(figures['max_ms'])} ms"
        )
    return {"size": SIZE, "services": services}


def markdown(burst: dict[str, Any]) -> list[str]:
    lines = [
        f"Burst: {burst['size']:,} requests released at once at each service over as many "
        "open connections; latency from the release; peak RSS of the process so far.",
        "",
        "| service | request | statuses | 5xx | wrong | p50 ms | p99 ms | max ms "
        "| new conn | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for service, f in burst["services"].items():
        lines.append(
            f"| {service} | {f['request']} | {statuses_text(f['statuses'])} | {f['5xx']} | "
            f"{f['wrong']} | {ms(f['p50_ms'])} | {ms(f['p99_ms'])} | {ms(f['max_ms'])} | "
            f"{f['connections_opened_during']} | {f['peak_rss_mib']:.0f} |"
        )
    return lines
