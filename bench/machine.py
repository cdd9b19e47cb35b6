"""How busy the machine is: a measured run starts only once nothing else loads it, since
two cores leave no room for a neighbour's work."""

from __future__ import annotations

import time
from pathlib import Path


def _busy_and_total() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])
    return total - idle, total


def busy_percent(seconds: float = 0.5) -> float:
    """Share of all CPUs in use over ``seconds`` (100 = every core busy)."""
    busy1, total1 = _busy_and_total()
    time.sleep(seconds)
    busy2, total2 = _busy_and_total()
    return 100 * (busy2 - busy1) / max(1, total2 - total1)


def wait_until_quiet(threshold: float = 10, timeout: float = 60) -> bool:
    """Wait up to ``timeout`` s for the machine to go idle; False if it never did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if busy_percent() < threshold:
            return True
    return False
