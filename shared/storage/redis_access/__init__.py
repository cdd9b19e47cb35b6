"""An auto-pipelined Redis client for request paths: one multiplexed connection per
server and process, bounded, with a deadline on every command and fast failure while
Redis is away.

What it guarantees:

- The commands issued in one event-loop turn, by every request of the process, leave in
  one write; replies are matched in order (``connection``). No pool, no per-command
  checkout or timer.
- Every command has a deadline; an overdue reply poisons its connection, so a late
  reply never reaches another caller. At most ``max_in_flight`` commands await replies
  on a connection; more callers wait for room.
- No command is ever sent again after it may have run. The only re-sends are a Cluster's
  ``MOVED``/``ASK`` and a script's ``NOSCRIPT`` (done by the caller), answers that say
  the command did not run.
- While a server cannot be reached, commands fail at once with ``ConnectionError``; a
  probe reconnects as soon as it answers, with one log line each way (``node``).
- Errors are redis-py's exception classes, and the command methods redis-py's names and
  reply shapes for the commands Tessera uses, so its code runs on either (``commands``);
  ``errors.is_unavailable`` tells a Redis that cannot serve for now from a bug.

What it leaves to redis-py: asking the sentinels where the master is (``Sentinel``),
CRC16 key slots, URL parsing, pub/sub and administration.
"""

from __future__ import annotations

from shared.storage.redis_access.commands import Client, Pipeline
from shared.storage.redis_access.connection import Address
from shared.storage.redis_access.from_url import connect
from shared.storage.redis_access.node import Options, Outages

__all__ = ["Address", "Client", "Options", "Outages", "Pipeline", "connect"]
