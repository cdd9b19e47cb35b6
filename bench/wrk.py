"""One checked ``wrk`` run: POST form bodies at an endpoint, verify every response."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import orjson

SCRIPT = Path(__file__).with_name("lua") / "checked_post.lua"
# One thread: the Lua script hands out fresh bodies from one list, which a second thread
# would hand out again.
THREADS = 1


@dataclass(frozen=True, slots=True)
class Load:
    """What to send and what every answer must be."""

    url: str
    auth: str = ""  # Authorization header value
    body: str = ""  # the same body every time, or
    bodies: Path | None = None  # one fresh body per request, one per line
    expect: str = ""  # a substring of every response body
    status: int = 200


@dataclass(frozen=True, slots=True)
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: dict[str, object] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.failures


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk (make bench installs it)")
    return found


def run(load: Load, *, seconds: float, connections: int, cpu: int) -> Result:
    env = {
        **os.environ,
        "BENCH_AUTH": load.auth,
        "BENCH_BODY": load.body,
        "BENCH_BODIES": str(load.bodies or ""),
        "BENCH_EXPECT": load.expect,
        "BENCH_STATUS": str(load.status),
    }
    argv = [
        "taskset",
        "-c",
        str(cpu),
        wrk_path(),
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "--latency",
        "--script",
        str(SCRIPT),
        load.url,
    ]
    completed = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
    figures = orjson.loads(line.removeprefix("BENCH_JSON "))
    failures = {
        name: figures[name]
        for name in ("bad_status", "bad_body", "exhausted", "socket_errors")
        if figures[name]
    }
    if failures:
        failures["first_bad"] = figures["first_bad"]
    return Result(
        rps=figures["rps"],
        p50_ms=figures["p50_ms"],
        p99_ms=figures["p99_ms"],
        requests=figures["requests"],
        failures=failures,
    )
