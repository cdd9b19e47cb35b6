"""Commands to a Redis Cluster: each to the master that owns its key's slot.

The slot map comes from ``CLUSTER SLOTS``, asked of any known node, at start and again
whenever a node answers ``MOVED`` (the slot has a new owner) or fails. A ``MOVED`` or
``ASK`` answer means the command did not run, so it is sent on to the node named: this
is the one case where a command goes out twice, and it is safe. ``ASK`` (a slot being
migrated) sends ``ASKING`` and the command back to back to the importing node, once,
without changing the map (Redis Cluster specification, "ASK redirection").
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import defaultdict

from redis import exceptions
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from shared.storage.redis_access.commands import Command, Reply
from shared.storage.redis_access.connection import Address, pack_command
from shared.storage.redis_access.node import Node, Options, Outages, await_shared
from shared.storage.redis_access.server import ASKING, batch_on, replies_of

log = logging.getLogger("tessera.redis")

# Redirections followed for one command before giving up (a map in flux).
MAX_REDIRECTS = 5
# Commands without a key, sent to any node.
_KEYLESS = frozenset({"PING", "PUBLISH", "INFO", "TIME"})


def key_of(command: Command) -> str | bytes | None:
    """The key that decides a command's slot: the first key (Tessera's multi-key
    commands and scripts use keys of one hash tag, so of one slot)."""
    name = str(command[0]).upper()
    if name in _KEYLESS:
        return None
    if name in ("EVAL", "EVALSHA"):
        return command[3] if int(command[2]) > 0 else None  # type: ignore[return-value]
    return command[1] if len(command) > 1 else None  # type: ignore[return-value]


def slot_of(key: str | bytes) -> int:
    return key_slot(key.encode() if isinstance(key, str) else key)


class ClusterRouter:
    def __init__(
        self, startup: list[Address], options: Options, outages: Outages | None = None
    ) -> None:
        self._options = options
        self._outages = outages
        self._nodes: dict[Address, Node] = {}
        self._startup = startup
        self._slots: list[Node | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
        self._refreshing: asyncio.Task[None] | None = None
        self._loaded = False

    def _node(self, address: Address) -> Node:
        node = self._nodes.get(address)
        if node is None:
            node = self._nodes[address] = Node.at(address, self._options, self._outages)
        return node

    # -- the slot map --------------------------------------------------------------------

    async def refresh(self) -> None:
        """Load the slot map (once at a time; concurrent callers share the load)."""
        await await_shared(self._reload(logged=False))

    def _reload(self, *, logged: bool) -> asyncio.Task[None]:
        """The load under way, or a new one. It is forgotten when it ends, whether or not
        anyone still awaits it: a caller cancelled meanwhile must not leave a finished
        load behind, which would stop every later reload."""
        if self._refreshing is None:
            task = asyncio.get_running_loop().create_task(self._load_slots())
            task.add_done_callback(functools.partial(self._reloaded, logged=logged))
            self._refreshing = task
        return self._refreshing

    def _reloaded(self, task: asyncio.Task[None], *, logged: bool) -> None:
        if self._refreshing is task:
            self._refreshing = None
        if task.cancelled():
            return
        failure = task.exception()  # retrieved even when no caller is left to see it
        if logged and failure is not None and not self._all_down():
            log.warning("reloading the Redis Cluster slot map failed: %s", failure)

    async def _load_slots(self) -> None:
        errors = []
        candidates = [*self._nodes.values()] + [
            self._node(a) for a in self._startup if a not in self._nodes
        ]
        for node in candidates:
            if node.down:
                continue
            try:
                ranges = await node.call(pack_command(("CLUSTER", "SLOTS")))
            except exceptions.RedisError as exc:
                errors.append(f"{node.address}: {exc}")
                continue
            slots: list[Node | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
            for first, last, master, *_replicas in ranges:
                # An empty host means "the address you reached me at".
                host = master[0] or (node.address.host if node.address else "127.0.0.1")
                owner = self._node(Address(host, int(master[1])))
                slots[first : last + 1] = [owner] * (last - first + 1)
            self._slots = slots
            self._loaded = True
            await self._forget_gone(set(slots))
            return
        raise exceptions.ConnectionError(
            "no Redis Cluster node gave its slot map: " + ("; ".join(errors) or "all down")
        )

    async def _forget_gone(self, owners: set[Node | None]) -> None:
        """Forget the nodes that are down and serve no slot (a failed master that its
        replica replaced, an address that a restarted node no longer has): their probes
        would run, and their outage count, for ever. The startup nodes stay."""
        for address, node in list(self._nodes.items()):
            if node.down and node not in owners and address not in self._startup:
                del self._nodes[address]
                log.warning("Redis at %s serves no slot any more; no longer tried", address)
                await node.aclose()

    async def _owner(self, command: Command) -> Node:
        if not self._loaded:
            await self.refresh()
        key = key_of(command)
        if key is None:
            for node in self._slots:
                if node is not None and not node.down:
                    return node
            key = ""
        node = self._slots[slot_of(key)]
        if node is None:
            await self.refresh()
            node = self._slots[slot_of(key)]
            if node is None:
                raise exceptions.ClusterDownError("no node serves this key's slot")
        return node

    # -- commands ------------------------------------------------------------------------

    async def call(self, command: Command) -> Reply:
        node = await self._owner(command)
        packed = pack_command(command)
        asking = False
        for _ in range(MAX_REDIRECTS):
            try:
                if asking:
                    _, reply = await replies_of(await node.send_many([ASKING, packed]))
                    if isinstance(reply, exceptions.RedisError):
                        raise reply
                    return reply
                return await node.call(packed)
            except exceptions.MovedError as moved:
                node = self._moved(moved)
                asking = False
            except exceptions.AskError as ask:
                node = self._node(Address(ask.host, ask.port))
                asking = True
            except exceptions.ConnectionError:
                self._schedule_refresh()  # a failed master: its replica may take over
                raise
        raise exceptions.ClusterError(f"more than {MAX_REDIRECTS} redirections for one command")

    def _moved(self, moved: exceptions.MovedError) -> Node:
        node = self._node(Address(moved.host, moved.port))
        self._slots[moved.slot_id] = node
        self._schedule_refresh()  # more slots than this one probably moved
        return node

    def _schedule_refresh(self) -> None:
        """Reload the map in the background; nobody awaits it, so a failure is logged.
        Not while every node is down: no node could answer, and each has logged its
        outage once, where a reload per failed command would log once per request."""
        if not self._all_down():
            self._reload(logged=True)

    def _all_down(self) -> bool:
        return all(node.down for node in self._nodes.values())

    async def batch(
        self, commands: list[Command], transaction: bool
    ) -> list[Reply | exceptions.RedisError]:
        try:
            replies = await self._batch(commands, transaction)
        except exceptions.ConnectionError:
            self._schedule_refresh()  # as for one command: a failed master's replica
            raise
        if any(isinstance(reply, exceptions.ConnectionError) for reply in replies):
            self._schedule_refresh()
        return replies

    async def _batch(
        self, commands: list[Command], transaction: bool
    ) -> list[Reply | exceptions.RedisError]:
        if transaction:
            # One slot (the caller's keys share a hash tag): one node, one MULTI/EXEC.
            node = await self._owner(commands[0])
            try:
                return await batch_on(node, commands, transaction=True)
            except exceptions.AskError as ask:
                # The slot is migrating and the key has left: EXEC ran nothing; the block
                # goes once to the importing node.
                target = self._node(Address(ask.host, ask.port))
                return await batch_on(target, commands, transaction=True, asking=True)
            except (exceptions.MovedError, exceptions.ExecAbortError):
                # EXEC ran nothing: reload the map and send the whole block once more.
                await self.refresh()
                return await batch_on(await self._owner(commands[0]), commands, True)
        # Independent commands: grouped by node, each group written back to back.
        groups: dict[Node, list[int]] = defaultdict(list)
        for index, command in enumerate(commands):
            groups[await self._owner(command)].append(index)
        replies: list[Reply | exceptions.RedisError] = [None] * len(commands)

        async def run(node: Node, indexes: list[int]) -> None:
            found = await batch_on(node, [commands[i] for i in indexes], transaction=False)
            for index, reply in zip(indexes, found, strict=True):
                if isinstance(reply, exceptions.MovedError | exceptions.AskError):
                    if isinstance(reply, exceptions.MovedError):
                        self._moved(reply)
                    try:  # not run there: follow the redirection for this command alone
                        reply = await self.call(commands[index])
                    except exceptions.RedisError as exc:
                        reply = exc
                replies[index] = reply

        outcomes = await asyncio.gather(
            *(run(node, indexes) for node, indexes in groups.items()), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return replies

    async def aclose(self) -> None:
        refreshing = self._refreshing
        if refreshing is not None:
            refreshing.cancel()
            await asyncio.wait({refreshing})
        await asyncio.gather(*(node.aclose() for node in self._nodes.values()))
