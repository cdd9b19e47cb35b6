"""Commands to one server: a standalone Redis, or the master a Sentinel names."""

from __future__ import annotations

import asyncio
from typing import cast

import hiredis
from redis import exceptions

from shared.storage.redis_access.commands import Command, Reply
from shared.storage.redis_access.connection import pack_command
from shared.storage.redis_access.errors import from_reply, is_read_only
from shared.storage.redis_access.node import Node

MULTI = pack_command(("MULTI",))
EXEC = pack_command(("EXEC",))
ASKING = pack_command(("ASKING",))


async def batch_on(
    node: Node, commands: list[Command], transaction: bool, *, asking: bool = False
) -> list[Reply | exceptions.RedisError]:
    """Send ``commands`` to ``node`` back to back, in a ``MULTI``/``EXEC`` block when
    ``transaction``; each reply, or the error in its place. ``asking`` puts ``ASKING``
    before the block (a Cluster's importing node; it holds until ``EXEC``)."""
    packed = [pack_command(command) for command in commands]
    if not transaction:
        return await replies_of(await node.send_many(packed))
    block = [ASKING, MULTI, *packed, EXEC] if asking else [MULTI, *packed, EXEC]
    replies = await replies_of(await node.send_many(block))
    for reply in replies:
        # MULTI's OK and each QUEUED first: a failure there (a syntax error, the
        # connection lost) means EXEC ran nothing, or never ran.
        if isinstance(reply, BaseException):
            raise reply
    executed = cast(list[Reply] | None, replies[-1])  # EXEC's: each command's reply
    if executed is None:
        raise exceptions.ExecAbortError("the transaction was aborted")
    return [from_reply(str(r)) if type(r) is hiredis.ReplyError else r for r in executed]


async def replies_of(
    futures: list[asyncio.Future[Reply]],
) -> list[Reply | exceptions.RedisError]:
    """Each future's reply or error, in order. Awaited one by one rather than gathered:
    replies come in order, so after the first the rest are usually there already."""
    replies: list[Reply | exceptions.RedisError] = []
    try:
        for future in futures:
            try:
                replies.append(await future)
            except exceptions.RedisError as exc:
                replies.append(exc)
    except asyncio.CancelledError:
        for future in futures:
            future.cancel()  # their replies, when they come, are dropped
        raise
    return replies


class ServerRouter:
    """Every command to one node. With ``Options.require_master`` (Sentinel), a READONLY
    answer (a master that failover demoted) drops the connection, so the next command
    finds the new master."""

    def __init__(self, node: Node) -> None:
        self.node = node

    async def call(self, command: Command) -> Reply:
        try:
            return await self.node.call(pack_command(command))
        except exceptions.ResponseError as exc:
            if is_read_only(exc):
                self._demoted()
            raise

    async def batch(
        self, commands: list[Command], transaction: bool
    ) -> list[Reply | exceptions.RedisError]:
        try:
            replies = await batch_on(self.node, commands, transaction)
        except exceptions.ResponseError as exc:
            if is_read_only(exc):
                self._demoted()
            raise
        if any(is_read_only(reply) for reply in replies):
            self._demoted()
        return replies

    def _demoted(self) -> None:
        if self.node.options.require_master:
            self.node.drop_connection("it is no longer the master")

    async def aclose(self) -> None:
        await self.node.aclose()
