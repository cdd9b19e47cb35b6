"""Running a Lua script by its SHA-1 (EVALSHA); ``scripts`` runs Tessera's through it.

A script's text, up to 2 KB, then crosses to Redis only when Redis lacks it: on first
use, after a restart or failover, or on a cluster node that has not run it yet. Redis
answers NOSCRIPT, the text goes once with EVAL, and Redis keeps it from then on.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from redis.asyncio import RedisCluster
from redis.exceptions import NoScriptError

from shared.storage.script_files import Arg

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient


@functools.cache
def _sha(source: str) -> str:
    # SHA-1 because it is Redis's name for a script, not for any security.
    return hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


async def run(redis: RedisClient, source: str, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
    """The script's answer."""
    try:
        return await redis.evalsha(_sha(source), len(keys), *keys, *args)
    except NoScriptError:
        return await redis.eval(source, len(keys), *keys, *args)


async def run_after(
    redis: RedisClient,
    queue: Callable[[Any], None],
    source: str,
    keys: Sequence[Arg],
    args: Sequence[Arg],
) -> Any:
    """Pipeline the commands ``queue`` adds, then the script, in one round trip; the
    script's answer. Those commands are sent again when Redis lacked the script, so they
    must be safe to repeat. With redis-py's Cluster client (the CLI, administration) the
    text is sent every time: it refuses EVALSHA inside a cluster pipeline."""
    for by_sha in (False,) if isinstance(redis, RedisCluster) else (True, False):
        async with redis.pipeline(transaction=False) as pipe:
            queue(pipe)
            if by_sha:
                pipe.evalsha(_sha(source), len(keys), *keys, *args)
            else:
                pipe.eval(source, len(keys), *keys, *args)
            try:
                return (await pipe.execute())[-1]
            except NoScriptError:
                if not by_sha:
                    raise
    raise AssertionError("unreachable")
