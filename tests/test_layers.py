"""Storage is the only code that talks to Redis (DESIGN.md, "Redis is the only store"):
outside ``shared/storage/`` no module of Tessera sends a Redis command itself; it calls a
storage function, which hands back typed records.

Read from the source, not run: each module of ``SCANNED`` is parsed with ``ast``, and a
call of a Redis command fails the test when it is made on something named for a Redis
client, as Tessera names them (``redis``, ``self._redis``, ``tessera.redis``,
``request.app[REDIS]``, a pipeline ``pipe``). The commands are every method of redis-py's
command classes, so a command Redis adds is covered too. ``pipeline``, ``pubsub``,
``execute_command``, ``eval`` and ``evalsha`` count on anything, whatever it is named. A
client under another name passes unseen: keep to the names. Opening and closing a client
(``connect``, ``aclose``) is no command.

Imports are pyproject.toml's import contract "Above storage nothing spells a key or runs a
Lua script", checked by ``make lint``.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.client import Pipeline

REPO = Path(__file__).resolve().parent.parent
SCANNED = ("shared", "services", "devtools", "bench")
STORAGE = REPO / "shared" / "storage"

COMMANDS = frozenset(
    name
    for client in (Redis, RedisCluster, Pipeline)
    for cls in inspect.getmro(client)
    if cls.__module__.startswith("redis.commands")
    for name, value in vars(cls).items()
    if callable(value) and not name.startswith("_")
)
# What reaches Redis whatever the receiver is called.
ON_ANYTHING = frozenset({"pipeline", "pubsub", "execute_command", "eval", "evalsha"})

# The modules that may send some commands themselves, by their nature.
ALLOWED: dict[str, tuple[frozenset[str], str]] = {
    "shared/web/base_app.py": (
        frozenset({"ping"}),
        "/readyz asks whether Redis answers: a probe of the connection, no record",
    ),
    "shared/web/client_changes.py": (
        frozenset({"pubsub"}),
        "listening for client changes: a subscription holds a redis-py connection of its "
        "own, which the request-path client has not",
    ),
    "devtools/local_processes.py": (
        frozenset({"ping", "info"}),
        "waits until the redis-server it started answers, and is that process",
    ),
    "bench/floor.py": (
        frozenset({"get"}),
        "the benchmark's floor: what one Redis GET costs with nothing of Tessera around it",
    ),
    "bench/outage.py": (
        frozenset({"config_set", "info"}),
        "turns on the append-only file of the benchmark's own Redis and waits for it",
    ),
    "bench/durability.py": (
        frozenset({"config_set"}),
        "switches the fsync policy of the benchmark's own Redis",
    ),
    "bench/__main__.py": (
        frozenset({"info"}),
        "measures the memory of the benchmark's own Redis",
    ),
}


def _names_redis(receiver: ast.expr) -> bool:
    spelled = ast.unparse(receiver)
    return "redis" in spelled.lower() or spelled.split(".")[-1] == "pipe"


def commands_sent(source: str) -> list[tuple[int, str]]:
    """(line, command) of each Redis command ``source`` sends itself."""
    sent: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name = node.func.attr
        if name in ON_ANYTHING or (name in COMMANDS and _names_redis(node.func.value)):
            sent.append((node.lineno, name))
    return sorted(sent)


def _modules() -> list[Path]:
    return [
        path
        for root in SCANNED
        for path in sorted((REPO / root).rglob("*.py"))
        if not path.is_relative_to(STORAGE)
    ]


def test_no_module_above_storage_sends_a_redis_command() -> None:
    found: list[str] = []
    for path in _modules():
        module = path.relative_to(REPO).as_posix()
        allowed, _ = ALLOWED.get(module, (frozenset(), ""))
        found += [
            f"{module}:{line}: {command}"
            for line, command in commands_sent(path.read_text())
            if command not in allowed
        ]
    assert not found, "sent above storage (move them into shared/storage/):\n" + "\n".join(found)


def test_every_allowance_is_still_needed() -> None:
    # An allowance nothing uses any more would let a command in unseen: remove it.
    for module, (allowed, _) in ALLOWED.items():
        sent = {command for _, command in commands_sent((REPO / module).read_text())}
        assert allowed <= sent, module


def test_the_check_sees_commands_sent_however_the_client_is_reached() -> None:
    source = """
async def handler(request, redis, tessera, client):
    await request.app[REDIS].smembers(key)
    await tessera.redis.set(key, value, ex=60)
    await self._redis.hgetall(key)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.sadd(key, member)
    await client.evalsha(sha, 1, key)
    settings.get("not Redis")
    await client.get("not a client named for Redis")
"""
    assert commands_sent(source) == [
        (3, "smembers"),
        (4, "set"),
        (5, "hgetall"),
        (6, "pipeline"),
        (7, "sadd"),
        (8, "evalsha"),
    ]
