"""The commands callers use, under redis-py's names and with its reply shapes (as with
``decode_responses=True``), for the commands and options Tessera uses: its code runs on
this layer and on redis-py alike.

``Client`` sends a command when it is awaited (and the connection writes together what
every caller issued in that event-loop turn); ``Pipeline`` sends its queued commands
together, optionally as one ``MULTI``/``EXEC`` transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Protocol

from redis import exceptions

Arg = str | bytes | int | float
Command = tuple[Arg, ...]
Reply = Any
Callback = Callable[[Reply], Any] | None


class Router(Protocol):
    """Where commands go: one server, a Sentinel's master, or a Cluster's slot owners."""

    async def call(self, command: Command) -> Reply: ...

    async def batch(
        self, commands: list[Command], transaction: bool
    ) -> list[Reply | exceptions.RedisError]: ...

    async def aclose(self) -> None: ...


def _ok(reply: Reply) -> bool | None:
    return True if reply == "OK" else None


def _pong(reply: Reply) -> bool:
    return bool(reply == "PONG")


def _pairs(reply: list[Any]) -> dict[Any, Any]:
    return dict(zip(reply[::2], reply[1::2], strict=True))


class Commands:
    """The command methods; subclasses say what calling one does (``_command``)."""

    def _command(self, command: Command, callback: Callback = None) -> Any:
        raise NotImplementedError

    # Strings
    def get(self, name: str) -> Any:
        return self._command(("GET", name))

    def set(
        self,
        name: str,
        value: Arg,
        ex: int | None = None,
        px: int | None = None,
        nx: bool = False,
        xx: bool = False,
        keepttl: bool = False,
    ) -> Any:
        command: list[Arg] = ["SET", name, value]
        if ex is not None:
            command += ["EX", ex]
        if px is not None:
            command += ["PX", px]
        if nx:
            command.append("NX")
        if xx:
            command.append("XX")
        if keepttl:
            command.append("KEEPTTL")
        return self._command(tuple(command), _ok)

    def mget(self, keys: str | Iterable[str], *args: str) -> Any:
        names = [keys] if isinstance(keys, str) else list(keys)
        return self._command(("MGET", *names, *args))

    def incr(self, name: str, amount: int = 1) -> Any:
        return self._command(("INCRBY", name, amount))

    # Keys
    def delete(self, *names: str) -> Any:
        return self._command(("DEL", *names))

    def exists(self, *names: str) -> Any:
        return self._command(("EXISTS", *names))

    def expire(self, name: str, seconds: int) -> Any:
        return self._command(("EXPIRE", name, seconds), bool)

    def ttl(self, name: str) -> Any:
        return self._command(("TTL", name))

    def pttl(self, name: str) -> Any:
        return self._command(("PTTL", name))

    # Hashes
    def hget(self, name: str, key: str) -> Any:
        return self._command(("HGET", name, key))

    def hmget(self, name: str, keys: str | Iterable[str], *args: str) -> Any:
        fields = [keys] if isinstance(keys, str) else list(keys)
        return self._command(("HMGET", name, *fields, *args))

    def hgetall(self, name: str) -> Any:
        return self._command(("HGETALL", name), _pairs)

    def hset(
        self,
        name: str,
        key: str | None = None,
        value: Arg | None = None,
        mapping: Mapping[str, Arg] | None = None,
    ) -> Any:
        pairs: list[Arg] = [] if key is None or value is None else [key, value]
        for field, item in (mapping or {}).items():
            pairs += [field, item]
        return self._command(("HSET", name, *pairs))

    def hdel(self, name: str, *keys: str) -> Any:
        return self._command(("HDEL", name, *keys))

    # Sets
    def sadd(self, name: str, *values: Arg) -> Any:
        return self._command(("SADD", name, *values))

    def srem(self, name: str, *values: Arg) -> Any:
        return self._command(("SREM", name, *values))

    def smembers(self, name: str) -> Any:
        return self._command(("SMEMBERS", name), set)

    # Sorted sets
    def zadd(
        self,
        name: str,
        mapping: Mapping[str, float],
        nx: bool = False,
        xx: bool = False,
        ch: bool = False,
        gt: bool = False,
        lt: bool = False,
    ) -> Any:
        flags = [
            flag for flag, on in (("NX", nx), ("XX", xx), ("GT", gt), ("LT", lt), ("CH", ch)) if on
        ]
        pairs: list[Arg] = []
        for member, score in mapping.items():
            pairs += [score, member]
        return self._command(("ZADD", name, *flags, *pairs))

    def zrem(self, name: str, *values: str) -> Any:
        return self._command(("ZREM", name, *values))

    def zrange(self, name: str, start: int, end: int) -> Any:
        return self._command(("ZRANGE", name, start, end))

    def zremrangebyscore(self, name: str, min: Arg, max: Arg) -> Any:
        return self._command(("ZREMRANGEBYSCORE", name, min, max))

    # Scripts
    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Arg) -> Any:
        return self._command(("EVALSHA", sha, numkeys, *keys_and_args))

    def eval(self, script: str, numkeys: int, *keys_and_args: Arg) -> Any:
        return self._command(("EVAL", script, numkeys, *keys_and_args))

    # Connection and pub/sub
    def ping(self) -> Any:
        return self._command(("PING",), _pong)

    def publish(self, channel: str, message: Arg) -> Any:
        return self._command(("PUBLISH", channel, message))


class Client(Commands):
    """Every command method returns an awaitable of its reply."""

    def __init__(self, router: Router) -> None:
        self._router = router

    def _command(self, command: Command, callback: Callback = None) -> Awaitable[Any]:
        return self._execute(command, callback)

    async def _execute(self, command: Command, callback: Callback) -> Any:
        reply = await self._router.call(command)
        return reply if callback is None else callback(reply)

    async def execute_command(self, *command: Arg) -> Reply:
        return await self._router.call(command)

    def pipeline(self, transaction: bool = True) -> Pipeline:
        return Pipeline(self._router, transaction)

    async def aclose(self) -> None:
        await self._router.aclose()


class Pipeline(Commands):
    """Commands queued by the methods, sent together by ``execute``; with
    ``transaction`` they run as one ``MULTI``/``EXEC`` block, so on one server."""

    def __init__(self, router: Router, transaction: bool) -> None:
        self._router = router
        self._transaction = transaction
        self._queued: list[Command] = []
        self._callbacks: list[Callback] = []

    def _command(self, command: Command, callback: Callback = None) -> Pipeline:
        self._queued.append(command)
        self._callbacks.append(callback)
        return self

    def __len__(self) -> int:
        return len(self._queued)

    async def __aenter__(self) -> Pipeline:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.reset()

    def reset(self) -> None:
        self._queued = []
        self._callbacks = []

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        """The replies in order. With ``raise_on_error`` the first failed command's
        error is raised (after every reply has come); else errors stand in the list."""
        queued, callbacks = self._queued, self._callbacks
        self.reset()
        if not queued:
            return []
        replies = await self._router.batch(queued, self._transaction)
        results: list[Any] = []
        for reply, callback in zip(replies, callbacks, strict=True):
            if isinstance(reply, exceptions.RedisError):
                if raise_on_error:
                    raise reply
                results.append(reply)
            else:
                results.append(reply if callback is None else callback(reply))
        return results
