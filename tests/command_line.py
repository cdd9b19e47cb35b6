"""Running ``tessera``, the administration command, against a stack's admin API.

``tessera`` runs the command in this process with Click's CliRunner (standard streams
and environment of its own, in a thread: the command runs an event loop of its own): a
process of its own spends 0.4 s of CPU starting Python and importing, and the suite runs
the command some hundred times. ``tessera_process`` runs the installed console script as
a process, for what only a process shows (the entry point, exit statuses, completion,
standard input through a pipe).

Every secret the command prints or is given on standard input goes to the ledger of
secrets no log line may hold (tests/secrets_ledger.py).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import orjson
from click.testing import CliRunner

from shared.admin import cli
from tests.secrets_ledger import SECRETS_USED
from tests.stack import ADMIN_TOKEN, TEST_PASSWORD_HASHING, Stack, password_hashing_env

TESSERA = str(Path(sys.executable).with_name("tessera"))
# The options that read a secret from standard input.
_SECRET_STDIN = {"--password-stdin", "--client-secret-stdin", "--secret-stdin", "--token-stdin"}


@dataclass(frozen=True)
class Run:
    status: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return orjson.loads(self.stdout)


def command_env(stack: Stack, credential: str = ADMIN_TOKEN) -> dict[str, str]:
    """What the command reads from the environment: the admin API and its credential;
    for bootstrap and log fingerprint, the Redis and how to hash a password."""
    return {
        "TESSERA_ADMIN_URL": stack.admin,
        "TESSERA_ADMIN_TOKEN": credential,
        "REDIS_URL": stack.redis_url,
        **password_hashing_env(TEST_PASSWORD_HASHING),
    }


class Command(Protocol):
    """How a test runs ``tessera ARGS``: ``tessera`` or ``tessera_process``."""

    async def __call__(
        self, stack: Stack, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> Run: ...


# Shorter values given on standard input are the refusals' ("short"): refused before
# anything used them, and words that any log line may hold ("cut short").
_SHORTEST_SECRET = 8


def _remember_secrets(args: tuple[str, ...], stdin: str | None, stdout: str) -> None:
    given = (stdin or "").splitlines()[0] if (stdin or "").strip() else ""
    if len(given) >= _SHORTEST_SECRET and _SECRET_STDIN & set(args):
        SECRETS_USED.add(given)
    try:
        printed = orjson.loads(stdout)
    except orjson.JSONDecodeError:
        return
    if isinstance(printed, dict) and isinstance(printed.get("client_secret"), str):
        SECRETS_USED.add(printed["client_secret"])


async def tessera_process(
    stack: Stack, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> Run:
    """``tessera ARGS``, the installed command, as a process."""
    process = await asyncio.create_subprocess_exec(
        TESSERA,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **command_env(stack), **(env or {})},
    )
    out, err = await process.communicate(stdin.encode() if stdin is not None else b"")
    assert process.returncode is not None
    run = Run(process.returncode, out.decode(), err.decode())
    _remember_secrets(args, stdin, run.stdout)
    return run


async def tessera(
    stack: Stack, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> Run:
    """``tessera ARGS`` in this process (CliRunner), given ``stdin`` and the environment
    it reads (``env`` on top of the stack's)."""
    run = await asyncio.to_thread(
        _invoke, list(args), stdin or "", {**command_env(stack), **(env or {})}
    )
    _remember_secrets(args, stdin, run.stdout)
    return run


# Standard streams and the environment belong to the process: one command at a time.
_ONE_AT_A_TIME = threading.Lock()


def _invoke(argv: list[str], stdin: str, env: dict[str, str]) -> Run:
    with _ONE_AT_A_TIME:
        # Not catching exceptions: one the command does not turn into a message fails
        # the test with its traceback.
        result = CliRunner().invoke(cli.tessera, argv, input=stdin, env=env, catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


async def listing(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    """Every client, scope and user the admin API lists: what a refused command must
    leave as it was."""
    found: dict[str, list[dict[str, Any]]] = {}
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        for kind in ("clients", "scopes", "users"):
            items: list[dict[str, Any]] = []
            params = {"limit": "100"}
            while True:
                async with http.get(f"{stack.admin}/v1/{kind}", params=params) as reply:
                    assert reply.status == 200, await reply.text()
                    page = await reply.json()
                items += page["items"]
                if not page["next_cursor"]:
                    break
                params["cursor"] = page["next_cursor"]
            found[kind] = items
    return found


async def assert_refused(
    stack: Stack,
    args: list[str],
    message: str,
    stdin: str | None = None,
    *,
    run_command: Command = tessera,
) -> Run:
    """The command exits non-zero with one line on stderr saying why, prints nothing on
    stdout, and the API lists the same clients, scopes and users as before."""
    before = await listing(stack)
    run: Run = await run_command(stack, *args, stdin=stdin)
    assert run.status != 0, run
    assert message in run.stderr, run.stderr
    assert run.stderr.startswith("tessera: error: "), run.stderr
    assert run.stderr.count("\n") == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout == ""
    assert await listing(stack) == before
    return run
