"""A bounded, time-limited cache of active introspection answers (RFC 7662 §4: "the
protected resource MAY cache the response", and must weigh that against revocation).

An entry lives ``cache_seconds`` at most and never past the token's ``exp``; the cache
holds ``cache_size`` entries at most, dropping the least recently used. It is keyed by
the token's SHA-256 digest (as Tessera stores tokens), so a memory dump of the resource
server gives away no token. Inactive answers are never cached: a token that is not
valid yet must not be refused for a while once it is, and a refusal costs the attacker,
not us, a round trip.

A dict is enough: the event loop is single-threaded, and ``cachetools`` would add a
dependency for twenty lines.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections import OrderedDict

from tessera_resource_server.access_token import AccessToken


class TokenCache:
    def __init__(self, max_seconds: float, max_entries: int) -> None:
        self.max_seconds = max_seconds
        self.max_entries = max_entries
        # digest -> (monotonic deadline, answer), least recently used first.
        self._entries: OrderedDict[str, tuple[float, AccessToken]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str) -> AccessToken | None:
        if self.max_seconds <= 0:
            return None
        key = _digest(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        deadline, answer = entry
        if time.monotonic() >= deadline:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return answer

    def put(self, token: str, answer: AccessToken) -> None:
        seconds = self.max_seconds
        if answer.exp is not None:
            # exp is wall-clock time; the deadline is kept on the monotonic clock, which
            # no clock adjustment moves.
            seconds = min(seconds, answer.exp - time.time())
        if seconds <= 0:
            return
        key = _digest(token)
        self._entries[key] = (time.monotonic() + seconds, answer)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def _digest(token: str) -> str:
    # surrogateescape: never raises, whatever a header decoder let through.
    raw = hashlib.sha256(token.encode(errors="surrogateescape")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
