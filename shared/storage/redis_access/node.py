"""A Redis server as callers see it: one shared connection, opened on first use and
again after a loss, and a known state while the server is away.

When a connection cannot be opened the node is *down*: every command fails at once with
ConnectionError (no caller waits for a timeout), and a probe tries to connect again every
``probe_interval`` seconds until the server answers. One line is logged when the node
goes down and one when it is back, with how long it was away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar, cast

from redis import exceptions

from shared.storage.redis_access.connection import Address, Connection, Reply, pack_command

log = logging.getLogger("tessera.redis")

Locate = Callable[[], Awaitable[Address]]
T = TypeVar("T")


async def await_shared(task: asyncio.Task[T]) -> T:
    """Await ``task``, which other callers await too: shielded, so that one caller giving
    up does not cancel it for the others. Only closing the client cancels it; a caller
    that was not cancelled itself then gets ConnectionError, not CancelledError."""
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if task.cancelled() and current is not None and not current.cancelling():
            raise exceptions.ConnectionError("the Redis client is closed") from None
        raise


@dataclass(frozen=True, slots=True)
class Options:
    """How to reach and talk to a server. ``timeout`` bounds connecting and every
    command's reply; ``max_in_flight`` bounds the commands awaiting replies on one
    connection (more callers wait for room: back-pressure)."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log line
    db: int = 0
    ssl_context: ssl.SSLContext | None = None
    timeout: float = 0.5
    max_in_flight: int = 1024
    probe_interval: float = 0.25
    # Refuse a server that is not a master (Sentinel: a demoted master after failover).
    require_master: bool = False


@dataclass(slots=True)
class Outages:
    """Callbacks for a node going down and coming back (seconds away), for metrics."""

    down: Callable[[], None] = lambda: None
    up: Callable[[float], None] = lambda seconds: None


@dataclass(slots=True)
class _State:
    down_since: float | None = None
    reason: str = ""
    probe: asyncio.Task[None] | None = None
    connecting: asyncio.Task[Connection] | None = None


class Node:
    def __init__(self, locate: Locate, options: Options, outages: Outages | None = None) -> None:
        self._locate = locate
        self.options = options
        self._outages = outages or Outages()
        self._connection: Connection | None = None
        self._state = _State()
        self._closing = False
        self.address: Address | None = None

    @classmethod
    def at(cls, address: Address, options: Options, outages: Outages | None = None) -> Node:
        async def fixed() -> Address:
            return address

        node = cls(fixed, options, outages)
        node.address = address
        return node

    @property
    def down(self) -> bool:
        return self._state.down_since is not None

    # -- commands ------------------------------------------------------------------------

    async def call(self, command: bytes) -> Reply:
        """Send one packed command and return its reply."""
        connection = self._connection
        if connection is None or connection.closed is not None:
            connection = await self._connected()
        if connection.full:
            await connection.wait_for_room()
        return await connection.send(command)

    async def send_many(self, commands: Sequence[bytes]) -> list[asyncio.Future[Reply]]:
        """Send packed commands together, back to back; their futures, in order."""
        connection = self._connection
        if connection is None or connection.closed is not None:
            connection = await self._connected()
        if connection.full:
            await connection.wait_for_room()
        return connection.send_many(commands)

    def drop_connection(self, reason: str) -> None:
        """Close the connection (its commands in flight fail); the next call opens a new
        one, found anew (Sentinel). For a server that answered it is no longer master."""
        connection = self._connection
        # Once: every command of the batch that a demoted master refused says so.
        if connection is not None and connection.closed is None:
            log.warning("dropping the connection to Redis at %s: %s", self.address, reason)
            connection.close()

    # -- connecting ----------------------------------------------------------------------

    async def _connected(self) -> Connection:
        state = self._state
        if self._closing:
            raise exceptions.ConnectionError("the Redis client is closed")
        if state.down_since is not None:
            raise exceptions.ConnectionError(f"Redis is unavailable: {state.reason}")
        if state.connecting is None:
            state.connecting = asyncio.get_running_loop().create_task(self._connect_or_go_down())
        return await await_shared(state.connecting)

    async def _connect_or_go_down(self) -> Connection:
        try:
            return await self._connect()
        except (exceptions.RedisError, OSError) as exc:
            self._go_down(str(exc))
            raise
        finally:
            self._state.connecting = None

    async def _connect(self) -> Connection:
        options = self.options
        address = await self._locate()
        self.address = address
        connection = await Connection.open(
            address,
            seconds=options.timeout,
            max_in_flight=options.max_in_flight,
            ssl_context=options.ssl_context,
        )
        try:
            await self._handshake(connection)
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection

    async def _handshake(self, connection: Connection) -> None:
        """AUTH, SELECT and a check of the role, written as one batch."""
        options = self.options
        commands: list[tuple[str | int, ...]] = []
        if options.password is not None:
            if options.username is not None:
                commands.append(("AUTH", options.username, options.password))
            else:
                commands.append(("AUTH", options.password))
        if options.db:
            commands.append(("SELECT", options.db))
        commands.append(("ROLE",) if options.require_master else ("PING",))
        futures = connection.send_many([pack_command(c) for c in commands])
        replies = await asyncio.gather(*futures, return_exceptions=True)
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        if options.require_master:
            role = cast(list[str], replies[-1])[0]  # ROLE's answer: none of them failed
            if role != "master":
                raise exceptions.ConnectionError(
                    f"Redis at {self.address} is a {role}, not the master"
                )

    def _go_down(self, reason: str) -> None:
        state = self._state
        if self._closing or state.down_since is not None:
            return
        state.down_since = time.monotonic()
        state.reason = reason
        log.warning("Redis unavailable, failing commands at once until it answers: %s", reason)
        self._outages.down()
        state.probe = asyncio.get_running_loop().create_task(self._probe())

    async def _probe(self) -> None:
        state = self._state
        while not self._closing:
            await asyncio.sleep(self.options.probe_interval)
            try:
                await self._connect()
            except (exceptions.RedisError, OSError) as exc:
                state.reason = str(exc)
                continue
            except Exception:
                # Whatever else (a reply of an unexpected shape), the probe goes on.
                log.exception("probing Redis at %s failed", self.address)
                continue
            assert state.down_since is not None
            seconds = time.monotonic() - state.down_since
            state.down_since = None
            state.probe = None
            log.warning("Redis available again at %s after %.2f s", self.address, seconds)
            self._outages.up(seconds)
            return

    async def aclose(self) -> None:
        self._closing = True
        state = self._state
        for task in (state.probe, state.connecting):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if state.down_since is not None:
            # Down and up come in pairs for the counters: a node closed while down (one
            # that a Cluster forgot, or at shutdown) is no longer counted unavailable.
            self._outages.up(time.monotonic() - state.down_since)
            state.down_since = None
