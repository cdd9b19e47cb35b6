"""One connection to one Redis server, shared by every caller of the process.

Commands are queued as they are issued and written together once per event-loop turn, so
the commands of every request that ran in that turn cost one ``write`` and, usually, one
read (auto-pipelining, as ioredis does). Redis answers a connection's commands in the
order it received them (RESP), so replies are matched to their callers first in, first
out; hiredis parses them.

Every command carries a deadline. When the oldest reply is overdue the connection is
poisoned: every command on it fails at once and it is closed, because a reply that
arrives late could otherwise be taken for the answer to a later command. A command is
never sent twice: whoever issued it learns that it failed and may or may not have run.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import hiredis
from redis import exceptions

from shared.storage.redis_access.errors import from_reply

Reply = Any
# Stands for a reply that hiredis could not decode as UTF-8.
_NOT_TEXT = object()


@dataclass(frozen=True, slots=True)
class Address:
    """Where a server listens: ``host`` and ``port``, or a Unix socket ``path``."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None

    def __str__(self) -> str:
        return self.path or f"{self.host}:{self.port}"


# hiredis's stub types the argument as a 1-tuple; it packs a command of any length.
pack_command = cast(
    "Callable[[tuple[str | bytes | int | float, ...]], bytes]", hiredis.pack_command
)


class Connection(asyncio.Protocol):
    def __init__(self, timeout: float, max_in_flight: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._timeout = timeout
        self._max_in_flight = max_in_flight
        self._reader = hiredis.Reader(encoding="utf-8")
        self._transport: asyncio.Transport | None = None
        # (future, deadline) of every command written or about to be, oldest first.
        self._pending: deque[tuple[asyncio.Future[Reply], float]] = deque()
        self._outgoing: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None
        self._room_waiters: deque[asyncio.Future[None]] = deque()
        self.closed: exceptions.RedisError | None = None

    # -- opening and closing ------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        address: Address,
        *,
        seconds: float,
        max_in_flight: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> Connection:
        """Connect within ``seconds``, which also bounds every reply; ConnectionError or
        TimeoutError otherwise."""
        loop = asyncio.get_running_loop()
        connection = cls(seconds, max_in_flight)
        try:
            async with asyncio.timeout(seconds):
                if address.path is not None:
                    await loop.create_unix_connection(lambda: connection, address.path)
                else:
                    await loop.create_connection(
                        lambda: connection,
                        address.host,
                        address.port,
                        ssl=ssl_context,
                        server_hostname=address.host if ssl_context else None,
                    )
        except TimeoutError:
            raise exceptions.TimeoutError(f"connecting to Redis at {address} timed out") from None
        except OSError as exc:
            raise exceptions.ConnectionError(
                f"cannot connect to Redis at {address}: {exc.strerror or exc}"
            ) from None
        return connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exceptions.ConnectionError("the connection to Redis was lost"))

    def close(self) -> None:
        self._fail(exceptions.ConnectionError("the connection to Redis was closed"))

    def _fail(self, error: exceptions.RedisError) -> None:
        """Fail every command in flight with ``error`` and close: nothing more is sent on
        this connection, and no late reply can reach another caller."""
        if self.closed is None:
            self.closed = error
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, deque()
        self._outgoing.clear()
        for future, _ in pending:
            if not future.done():
                # One exception object each: every caller raises, and adds to, its own.
                future.set_exception(type(error)(*error.args))
        while self._room_waiters:
            waiter = self._room_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        if self._transport is not None:
            self._transport.abort()

    # -- sending ------------------------------------------------------------------------

    @property
    def full(self) -> bool:
        return len(self._pending) >= self._max_in_flight

    async def wait_for_room(self) -> None:
        """Back-pressure: wait until fewer than ``max_in_flight`` commands are pending,
        for the deadline at most (TimeoutError; the command was not sent). Without that
        bound a caller could wait behind any number of punctual replies."""
        try:
            async with asyncio.timeout(self._timeout):
                while self.full and self.closed is None:
                    waiter = self._loop.create_future()
                    self._room_waiters.append(waiter)
                    await waiter
        except TimeoutError:
            raise exceptions.TimeoutError(
                f"no room for a command to Redis within {self._timeout:g} s"
            ) from None

    def send(self, command: bytes) -> asyncio.Future[Reply]:
        """Queue one packed command; its reply comes through the future."""
        return self.send_many((command,))[0]

    def send_many(self, commands: Sequence[bytes]) -> list[asyncio.Future[Reply]]:
        """Queue packed commands to be written together, in this order and with nothing
        between them (so ``MULTI`` ... ``EXEC`` and ``ASKING`` + command stay whole)."""
        if self.closed is not None:
            raise type(self.closed)(*self.closed.args)
        if not self._outgoing:
            self._loop.call_soon(self._flush)
        self._outgoing.extend(commands)
        deadline = self._loop.time() + self._timeout
        futures = []
        for _ in commands:
            future = self._loop.create_future()
            self._pending.append((future, deadline))
            futures.append(future)
        if self._timer is None:
            self._timer = self._loop.call_at(deadline, self._check_deadline)
        return futures

    def _flush(self) -> None:
        if self._outgoing and self._transport is not None and self.closed is None:
            self._transport.write(b"".join(self._outgoing))
            self._outgoing.clear()

    def _check_deadline(self) -> None:
        self._timer = None
        if not self._pending:
            return
        deadline = self._pending[0][1]
        if deadline <= self._loop.time():
            self._fail(exceptions.TimeoutError(f"Redis did not answer within {self._timeout:g} s"))
        else:
            self._timer = self._loop.call_at(deadline, self._check_deadline)

    # -- receiving ----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        pending = self._pending
        try:
            reader.feed(data)
            while True:
                try:
                    reply = reader.gets()
                except UnicodeDecodeError:
                    # hiredis has consumed the whole reply: only its caller fails.
                    reply = _NOT_TEXT
                if reply is False:
                    break
                future = pending.popleft()[0]
                if future.done():  # its caller gave up (cancelled); the reply is dropped
                    continue
                if type(reply) is hiredis.ReplyError:
                    future.set_exception(from_reply(str(reply)))
                elif reply is _NOT_TEXT:
                    future.set_exception(exceptions.DataError("Redis replied with non-UTF-8 bytes"))
                else:
                    future.set_result(reply)
        except Exception:
            # Garbage, or a reply nobody asked for: nothing on this stream can be trusted.
            self._fail(exceptions.ConnectionError("Redis sent a reply that was not expected"))
            return
        # As many waiters as there is room for, oldest first: the rest keep their place.
        waiters = self._room_waiters
        room = self._max_in_flight - len(pending)
        while waiters and room > 0:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                room -= 1
