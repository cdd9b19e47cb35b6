"""Running ``tessera``, the administration command, against the session's Redis.

``tessera`` runs the command's ``main`` as the console script does, in a thread of this
process with standard streams and an environment of its own: a process of its own spends
0.4 s of CPU starting Python and importing, and the suite runs the command some hundred
times. ``tessera_process`` runs the installed console script as a process, for the tests
of what only a process shows (the entry point, exit statuses, standard input through a
pipe)."""

from __future__ import annotations

import asyncio
import io
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis

from shared.admin import cli
from shared.storage import keys
from tests.stack import TEST_PASSWORD_HASHING, Stack, password_hashing_env

TESSERA = str(Path(sys.executable).with_name("tessera"))


@dataclass(frozen=True)
class Run:
    status: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return orjson.loads(self.stdout)


def command_env(stack: Stack) -> dict[str, str]:
    """What the command reads from the environment: the Redis, and how to hash a password
    (the suite's cheap parameters)."""
    return {"REDIS_URL": stack.redis_url, **password_hashing_env(TEST_PASSWORD_HASHING)}


class Command(Protocol):
    """How a test runs ``tessera ARGS``: ``tessera`` or ``tessera_process``."""

    async def __call__(self, stack: Stack, *args: str, stdin: str | None = None) -> Run: ...


async def tessera_process(stack: Stack, *args: str, stdin: str | None = None) -> Run:
    """``tessera ARGS``, the installed command, as a process."""
    process = await asyncio.create_subprocess_exec(
        TESSERA,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **command_env(stack)},
    )
    out, err = await process.communicate(stdin.encode() if stdin is not None else b"")
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


async def tessera(stack: Stack, *args: str, stdin: str | None = None) -> Run:
    """``tessera ARGS``: the command's ``main`` in a thread (it runs an event loop of its
    own), given ``stdin`` and the environment it reads."""
    return await asyncio.to_thread(_main, list(args), stdin or "", command_env(stack))


# Standard streams and the environment belong to the process: one command at a time.
_ONE_AT_A_TIME = threading.Lock()


def _main(argv: list[str], stdin: str, env: dict[str, str]) -> Run:
    out, err = io.StringIO(), io.StringIO()
    with _ONE_AT_A_TIME:
        streams = sys.stdin, sys.stdout, sys.stderr
        saved_env = {name: os.environ.get(name) for name in env}
        sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin), out, err
        os.environ.update(env)
        try:
            status = cli.main(argv)
        except SystemExit as exit_:  # argparse: a usage error (2), --help (0)
            status = _exit_status(exit_.code, err)
        finally:
            sys.stdin, sys.stdout, sys.stderr = streams
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    return Run(status, out.getvalue(), err.getvalue())


def _exit_status(code: object, err: io.StringIO) -> int:
    """The status ``sys.exit(code)`` would end a process with."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=err)
    return 1


async def snapshot(redis: Redis) -> dict[str, object]:
    """Every client, scope and user key with its value, and the three index sets."""
    # Read in a few round trips: the session's Redis holds every test's records.
    names = [
        key
        for pattern in ("tessera:client:*", "tessera:scope:*", "tessera:user:*")
        async for key in redis.scan_iter(match=pattern, count=10_000)
    ]
    values = await redis.mget(names) if names else []
    state: dict[str, object] = dict(zip(names, values, strict=True))
    for index in (keys.CLIENT_INDEX, keys.SCOPE_INDEX, keys.USER_INDEX):
        state[index] = await redis.smembers(index)
    return state


async def counts(redis: Redis) -> tuple[int, int, int]:
    return (
        await redis.scard(keys.CLIENT_INDEX),
        await redis.scard(keys.SCOPE_INDEX),
        await redis.scard(keys.USER_INDEX),
    )


async def assert_refused(
    stack: Stack,
    redis: Redis,
    args: list[str],
    message: str,
    stdin: str | None = None,
    *,
    run_command: Command = tessera,
) -> Run:
    """The command exits non-zero, says why on stderr, prints nothing, changes nothing."""
    before, before_counts = await snapshot(redis), await counts(redis)
    run: Run = await run_command(stack, *args, stdin=stdin)
    assert run.status != 0, run
    assert message in run.stderr, run.stderr
    assert run.stderr.startswith("tessera") or run.stderr.startswith("usage: tessera")
    assert "Traceback" not in run.stderr
    assert run.stdout == ""
    assert await counts(redis) == before_counts
    assert await snapshot(redis) == before
    return run
