"""What a process remembers of the subjects it refused: in memory, not in Redis, so a
request that never fails pays no Redis command for a limit (the counting itself is
``shared.storage.rate_limits``)."""

from __future__ import annotations

import math
import time

from aiohttp import web


class RecentRefusals:
    """Subjects this process refused lately, until their window ends: checked in memory
    before work that a refused subject must not get (a secret compared), so requests that
    never fail pay no Redis command for the limit. Another replica learns of a subject at
    its first failure there. Bounded: past ``capacity`` the ended ones are dropped, then
    the oldest."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._until: dict[str, float] = {}
        self._capacity = capacity
        self._last_end = -math.inf

    def any_held(self) -> bool:
        """Whether any refusal may still hold; once the last has ended all are forgotten."""
        if self._until and time.monotonic() >= self._last_end:
            self._until.clear()
        return bool(self._until)

    def refused(self, subject: str) -> int | None:
        """The seconds ``subject`` remains refused, or None."""
        until = self._until.get(subject)
        if until is None:
            return None
        left = until - time.monotonic()
        if left <= 0:
            del self._until[subject]
            return None
        return max(1, math.ceil(left))

    def refuse(self, subject: str, seconds: int) -> None:
        if len(self._until) >= self._capacity:
            now = time.monotonic()
            self._until = {s: u for s, u in self._until.items() if u > now}
            while len(self._until) >= self._capacity:
                del self._until[next(iter(self._until))]
        self._until.pop(subject, None)  # re-inserted last: the dict stays in time order
        self._until[subject] = until = time.monotonic() + seconds
        self._last_end = max(self._last_end, until)


# Client addresses this process refused lately for failing client authentication
# (shared.web.client_auth), refused again without a secret compared.
CLIENT_AUTH_REFUSALS: web.AppKey[RecentRefusals] = web.AppKey("client_auth_refusals")
