"""Redis SIGKILLed for 5 s under load, and what clients got meanwhile. Reported, never
judged; the aims are no 500, each 503 answered within 1 s, full service soon after Redis
is back, and no token issued before the kill lost.

Workers send client_credentials and introspection requests back to back, each request
recorded (when sent, status, latency). After ``BEFORE`` seconds Redis is SIGKILLed; after
``DOWN`` more it is started again on its port with its data directory and append-only
file (turned on first: the bench's Redis otherwise runs without one); the load goes on
until ``FULL`` seconds of only right answers, or ``RECOVERY_LIMIT``. Then a sample of the
tokens issued before the kill is introspected: each must still be active.
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
from bench.fixtures import Fixtures
from shared.storage.redis_store import AdminClient

WORKERS = 8  # per kind of request: a bounded load that leaves the services headroom
BEFORE = 3.0  # seconds of steady load before the kill
DOWN = 5.0  # seconds Redis stays down
FULL = 1.0  # seconds of only right answers that make full service
RECOVERY_LIMIT = 30.0  # seconds after Redis is back to wait for full service
SAMPLE = 200  # tokens issued before the kill, introspected afterwards
TIMEOUT = aiohttp.ClientTimeout(total=10)  # bounds each request, answered or not


def requests(urls: dict[str, str], made: Fixtures, active: str) -> list[Request]:
    return [
        client_credentials(urls, made, keep="access_token"),
        introspection(urls, made, active),
    ]


async def append_only(redis: AdminClient) -> None:
    """Turn on the append-only file and wait until it holds the whole data set."""
    await redis.config_set("appendonly", "yes")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        info = await redis.info("persistence")
        if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            if info["aof_last_bgrewrite_status"] != "ok":
                raise RuntimeError("Redis could not write its append-only file")
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("Redis did not finish its append-only file within 300 s")


def full_service_since(answers: list[Answer], killed: float) -> float | None:
    """When the first request was sent, after the kill, from which on every request got a
    right answer."""
    since_kill = [a for a in answers if a.sent >= killed]
    last_wrong = max((a.sent for a in since_kill if not a.ok), default=None)
    after = [a.sent for a in since_kill if last_wrong is None or a.sent > last_wrong]
    return min(after, default=None)


def sample_of(issued: list[str]) -> list[str]:
    """The last tokens issued before the kill (the likeliest to be lost, if any is) and an
    even spread of the earlier ones."""
    last = issued[-SAMPLE // 2 :]
    earlier = issued[: -SAMPLE // 2]
    step = max(1, len(earlier) // (SAMPLE // 2))
    return earlier[::step][: SAMPLE // 2] + last


async def run(
    tessera: stack.Tessera, redis: AdminClient, made: Fixtures, active: str
) -> dict[str, Any]:
    await append_only(redis)
    answers: list[Answer] = []
    stopping = asyncio.Event()
    # Bounds the load whatever happens: every phase, plus the time to load the file.
    deadline = time.monotonic() + BEFORE + DOWN + 120 + RECOVERY_LIMIT
    connector = aiohttp.TCPConnector(limit=2 * WORKERS)
    async with aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as session:

        async def worker(request: Request) -> None:
            while not stopping.is_set() and time.monotonic() < deadline:
                answers.append(await send(session, request, time.monotonic()))

        load = requests(tessera.urls, made, active)
        workers = [asyncio.create_task(worker(r)) for r in load for _ in range(WORKERS)]
        try:
            await asyncio.sleep(BEFORE)
            killed = time.monotonic()
            stack.kill_redis(tessera)
            print("outage: Redis SIGKILLed")
            await asyncio.sleep(DOWN)
            restarted = time.monotonic()
            back = await asyncio.to_thread(stack.restart_redis, tessera)
            print(f"outage: Redis restarted, answering after {back - restarted:.2f} s")
            while time.monotonic() < back + RECOVERY_LIMIT:
                await asyncio.sleep(0.2)
                since = full_service_since(answers, killed)
                # Long enough ago that slow answers have come in too.
                if since is not None and time.monotonic() - since > FULL + 1:
                    break
        finally:
            stopping.set()
            await asyncio.gather(*workers)
        issued = [
            a.value
            for a in sorted(answers, key=lambda a: a.sent)
            if a.kind == "client_credentials" and a.ok and a.answered < killed
        ]
        checks = [introspection(tessera.urls, made, token) for token in sample_of(issued)]
        survived = [await send(session, check, time.monotonic()) for check in checks]
    return figures(answers, killed, restarted, back, issued, survived)


def figures(
    answers: list[Answer],
    killed: float,
    restarted: float,
    back: float,
    issued: list[str],
    survived: list[Answer],
) -> dict[str, Any]:
    # By when sent: Redis up; no Redis process; started, loading its file (PING is polled
    # every 50 ms, so this includes up to that much of Redis answering); Redis answering.
    windows = {
        "before": [a for a in answers if a.sent < killed],
        "down": [a for a in answers if killed <= a.sent < restarted],
        "starting": [a for a in answers if restarted <= a.sent < back],
        "after": [a for a in answers if a.sent >= back],
    }
    phases: dict[str, Any] = {}
    for window, found in windows.items():
        for kind in ("client_credentials", "introspection"):
            phases.setdefault(window, {})[kind] = summary(a for a in found if a.kind == kind)
    during = windows["down"] + windows["starting"]
    # Answered once Redis was starting, so never one that was on its way before the kill.
    first_right = min(
        (a.answered for a in answers if a.ok and a.answered >= restarted), default=None
    )
    since = full_service_since(answers, killed)
    last_sent = max(a.sent for a in answers)
    full = since is not None and last_sent - since >= FULL
    return {
        "method": {
            "workers_per_kind": WORKERS,
            "before_s": BEFORE,
            "down_s": DOWN,
            "full_service_s": FULL,
            "recovery_limit_s": RECOVERY_LIMIT,
        },
        "phases": phases,
        "outage_500": sum(1 for a in during if a.status == "500"),
        "outage_503": sum(1 for a in during if a.status == "503"),
        "outage_503_within_1s": sum(1 for a in during if a.status == "503" and a.latency <= 1),
        "redis_loading_s": round(back - restarted, 3),
        # From Redis answering PING again; 0 when requests sent before then were served.
        "first_200_after_back_s": (
            None if first_right is None else round(max(0.0, first_right - back), 3)
        ),
        "full_service_after_back_s": (
            round(max(0.0, since - back), 3) if full and since is not None else None
        ),
        "tokens_issued_before_kill": len(issued),
        "tokens_checked": len(survived),
        "tokens_still_active": sum(1 for a in survived if a.ok),  # 200 with "active":true
        "token_checks": summary(survived)["statuses"],
    }


def markdown(outage: dict[str, Any]) -> list[str]:
    m = outage["method"]

    def seconds(value: float | None) -> str:
        return "not reached" if value is None else f"{value:.2f} s"

    lines = [
        f"Redis SIGKILLed under load ({m['workers_per_kind']} workers each for "
        f"client_credentials and introspection), down {m['down_s']:g} s, restarted from its "
        "append-only file. Answers by when they were sent: before the kill, while Redis was "
        "down, while it started and loaded its file, after it answered PING.",
        "",
        "| phase | request | statuses | 5xx | wrong | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for phase, by_kind in outage["phases"].items():
        for kind, f in by_kind.items():
            lines.append(
                f"| {phase} | {kind} | {statuses_text(f['statuses'])} | {f['5xx']} | "
                f"{f['wrong']} | {ms(f['p50_ms'])} | {ms(f['p99_ms'])} | {ms(f['max_ms'])} |"
            )
    lines += [
        "",
        f"Sent from the kill until Redis answered: {outage['outage_500']} answers 500, "
        f"{outage['outage_503']} answers 503 ({outage['outage_503_within_1s']} within 1 s). "
        f"Redis answered PING {outage['redis_loading_s']:.2f} s after its start (file "
        "loaded); from then, first right answer "
        f"{seconds(outage['first_200_after_back_s'])}, full service ({m['full_service_s']:g} s "
        f"of only right answers) {seconds(outage['full_service_after_back_s'])}. Tokens "
        f"issued before the kill: {outage['tokens_still_active']} of "
        f"{outage['tokens_checked']} checked still active "
        f"({statuses_text(outage['token_checks'])}; {outage['tokens_issued_before_kill']} "
        "issued).",
    ]
    return lines
