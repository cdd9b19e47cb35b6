"""Rates of the abuse limits: at most so many events in so many seconds (the settings'
``COUNT/SECONDS`` values, counted by ``shared.storage.rate_limits``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``count`` events per ``seconds``; a count of 0 turns the limit off."""

    count: int
    seconds: int

    @property
    def enabled(self) -> bool:
        return self.count > 0

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds}" if self.enabled else "off"


OFF = Rate(0, 1)
