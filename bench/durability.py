"""What durability costs: client_credentials issuance and authorization code redemption
with Redis's append-only file fsynced once a second (``appendfsync everysec``, Redis's
default) and after every write (``always``), side by side. Reported, never judged.

The bench's Redis otherwise runs without an append-only file; this turns it on and
switches the policy between runs with ``CONFIG SET appendfsync``. Each round measures
both scenarios at each connection count under both policies, everysec first in odd
rounds and always first in even ones, so a drift in the machine's load hurts both alike.
The figure says as much about the disk as about Tessera: the disk that holds Redis's
file is reported (device, file system) with the time one small write and fdatasync take
there, as Redis does per event-loop turn under ``always``, before and after the runs,
since a neighbour's writes change it.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from bench import outage, wrk
from bench.scenarios import Scenario
from shared.storage.redis_store import AdminClient

POLICIES = ("everysec", "always")
SCENARIOS = ("client_credentials", "authorization_code (PKCE S256)")
FSYNC_SAMPLES = 200

# Measures one scenario at a connection count, given the req/s expected (for how many
# fresh codes to make): bench.__main__.measure, bound to its arguments.
Measure = Callable[[Scenario, int, float], Awaitable[wrk.Result]]


def disk(directory: Path) -> dict[str, str]:
    """The device and file system holding ``directory``."""
    found = subprocess.run(
        ["findmnt", "--noheadings", "--output", "SOURCE,FSTYPE", "--target", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    return {
        "device": found[0] if found else "unknown",
        "filesystem": found[1] if len(found) > 1 else "unknown",
    }


def fdatasync_ms(directory: Path) -> dict[str, float]:
    """What one 4 KiB append and fdatasync cost in ``directory`` now: median and 99th
    percentile, in ms."""
    probe = directory / "fsync-probe"
    took: list[float] = []
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for _ in range(FSYNC_SAMPLES):
            start = time.perf_counter()
            os.write(fd, b"x" * 4096)
            os.fdatasync(fd)
            took.append((time.perf_counter() - start) * 1000)
    finally:
        os.close(fd)
        probe.unlink()
    took.sort()
    return {
        "p50": round(statistics.median(took), 3),
        "p99": round(took[int(len(took) * 0.99) - 1], 3),
    }


async def run(
    redis: AdminClient,
    scenarios: list[Scenario],
    measure: Measure,
    *,
    rounds: int,
    connections: list[int],
    redis_dir: Path,
) -> dict[str, Any]:
    chosen = [s for s in scenarios if s.name in SCENARIOS and s.target == "tessera"]
    await outage.append_only(redis)
    on = {**disk(redis_dir), "fdatasync_ms_before": fdatasync_ms(redis_dir)}
    runs: dict[tuple[str, str, int], list[wrk.Result]] = {
        (s.name, policy, count): [] for s in chosen for policy in POLICIES for count in connections
    }
    try:
        for number in range(1, rounds + 1):
            order = POLICIES if number % 2 else POLICIES[::-1]
            for count in connections:
                for policy in order:
                    await redis.config_set("appendfsync", policy)
                    for scenario in chosen:
                        # Fresh codes for at least 8,000 req/s, or the fastest run yet
                        # under either policy: a quieter minute must not run them out.
                        done = [r for p in POLICIES for r in runs[(scenario.name, p, count)]]
                        expected = max([8000.0, *(r.rps for r in done)])
                        result = await measure(scenario, count, expected)
                        runs[(scenario.name, policy, count)].append(result)
                        print(
                            f"run {number}  durability {policy:8} {scenario.name:32} "
                            f"{count:3} conn {result.rps:8.0f} req/s  p99 {result.p99_ms:6.2f} ms"
                            + ("" if result.valid else f"  INVALID {result.failures}")
                        )
    finally:
        await redis.config_set("appendfsync", "everysec")
    on["fdatasync_ms_after"] = fdatasync_ms(redis_dir)
    return figures(runs, on, rounds)


def _median(values: Iterable[float]) -> float | None:
    found = list(values)
    return statistics.median(found) if found else None


def figures(
    runs: dict[tuple[str, str, int], list[wrk.Result]], on: dict[str, Any], rounds: int
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for name, count in dict.fromkeys((name, count) for name, _, count in runs):
        # A run with a wrong answer says nothing about the cost; it is counted, not used.
        everysec = [r for r in runs[(name, "everysec", count)] if r.valid]
        always = [r for r in runs[(name, "always", count)] if r.valid]
        fast, safe = _median(r.rps for r in everysec), _median(r.rps for r in always)
        rows.append(
            {
                "scenario": name,
                "connections": count,
                "everysec_rps": fast,
                "always_rps": safe,
                "always_vs_everysec": safe / fast if fast and safe is not None else None,
                "everysec_p99_ms": _median(r.p99_ms for r in everysec),
                "always_p99_ms": _median(r.p99_ms for r in always),
                "runs": {
                    "everysec": [round(r.rps) for r in everysec],
                    "always": [round(r.rps) for r in always],
                },
                "invalid_runs": sum(
                    1 for p in POLICIES for r in runs[(name, p, count)] if not r.valid
                ),
            }
        )
    return {"rounds": rounds, "disk": on, "rows": rows}


def markdown(durability: dict[str, Any]) -> list[str]:
    d = durability["disk"]
    before, after = d["fdatasync_ms_before"], d["fdatasync_ms_after"]
    lines = [
        "Durability: Redis with its append-only file, `appendfsync everysec` against "
        f"`always`, interleaved, {durability['rounds']} round(s); medians. Disk: "
        f"{d['device']} ({d['filesystem']}); one 4 KiB write and fdatasync took "
        f"{before['p50']:.2f} ms median, {before['p99']:.2f} ms p99 before the runs, "
        f"{after['p50']:.2f} and {after['p99']:.2f} ms after.",
        "",
        "| scenario | conn | everysec req/s | always req/s | always / everysec (x) "
        "| p99 ms everysec | p99 ms always | runs left out (a wrong answer) |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def shown(value: float | None, form: str) -> str:
        return "none valid" if value is None else format(value, form)

    for row in durability["rows"]:
        lines.append(
            f"| {row['scenario']} | {row['connections']} "
            f"| {shown(row['everysec_rps'], '.0f')} | {shown(row['always_rps'], '.0f')} "
            f"| {shown(row['always_vs_everysec'], '.2f')} "
            f"| {shown(row['everysec_p99_ms'], '.2f')} | {shown(row['always_p99_ms'], '.2f')} "
            f"| {row['invalid_runs']} |"
        )
    return lines
