"""One request of the Python load generators (the burst and the Redis outage, which need
every answer, not wrk's totals), what came back, and a summary: counts by status and
latency percentiles."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench.fixtures import SCOPE, Fixtures


@dataclass(frozen=True)
class Request:
    """What to send, and what every answer must be to count as right."""

    kind: str  # e.g. "client_credentials"
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    data: dict[str, str] | None = None  # a form body
    params: dict[str, str] | None = None  # a query
    ok_statuses: frozenset[int] = frozenset({200})
    expect: str = ""  # a substring of a right answer's body
    keep: str = ""  # a field of the JSON answer to keep (an issued token)


def client_credentials(urls: dict[str, str], made: Fixtures, keep: str = "") -> Request:
    return Request(
        "client_credentials",
        "POST",
        f"{urls['token']}/token",
        {"Authorization": made.opaque.basic_auth},
        data={"grant_type": "client_credentials", "scope": SCOPE},
        expect='"access_token"',
        keep=keep,
    )


def introspection(urls: dict[str, str], made: Fixtures, token: str) -> Request:
    return Request(
        "introspection",
        "POST",
        f"{urls['introspect']}/introspect",
        {"Authorization": made.opaque.basic_auth},
        data={"token": token},
        expect='"active":true',
    )


@dataclass(frozen=True, slots=True)
class Answer:
    kind: str
    sent: float  # time.monotonic() when sent (for a burst: when released)
    latency: float  # seconds from ``sent`` to the whole answer read
    status: str  # the HTTP status, or the client error's name ("ServerDisconnectedError")
    ok: bool
    value: str = ""  # the kept field

    @property
    def answered(self) -> float:
        return self.sent + self.latency


async def send(session: aiohttp.ClientSession, request: Request, sent: float) -> Answer:
    """Send ``request`` once; a failure to get an answer is recorded, never raised."""
    try:
        async with session.request(
            request.method,
            request.url,
            headers=request.headers,
            data=request.data,
            params=request.params,
            allow_redirects=False,
        ) as response:
            body = await response.read()
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return Answer(request.kind, sent, time.monotonic() - sent, type(exc).__name__, False)
    latency = time.monotonic() - sent
    ok = response.status in request.ok_statuses and request.expect.encode() in body
    value = ""
    if ok and request.keep:
        value = str(orjson.loads(body)[request.keep])
    return Answer(request.kind, sent, latency, str(response.status), ok, value)


def percentile(ordered: list[float], share: float) -> float:
    """Nearest rank: the smallest value at or above ``share`` (0 to 1) of ``ordered``."""
    return ordered[max(1, math.ceil(len(ordered) * share)) - 1]


def summary(answers: Iterable[Answer]) -> dict[str, Any]:
    """Counts by status, wrong answers, and the latency of those that had an HTTP answer."""
    found = list(answers)
    statuses = Counter(a.status for a in found)
    latencies = sorted(a.latency * 1000 for a in found if a.status.isdigit())
    figures: dict[str, Any] = {
        "requests": len(found),
        "statuses": dict(sorted(statuses.items())),
        "5xx": sum(n for status, n in statuses.items() if status.startswith("5")),
        "wrong": sum(1 for a in found if not a.ok),  # any status or body but the right one
    }
    for name, share in (("p50_ms", 0.5), ("p99_ms", 0.99), ("max_ms", 1.0)):
        figures[name] = round(percentile(latencies, share), 2) if latencies else None
    return figures


def statuses_text(statuses: dict[str, int]) -> str:
    return ", ".join(f"{status}: {count}" for status, count in statuses.items()) or "none"


def ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"
