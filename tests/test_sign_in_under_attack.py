"""Under a flood of password guesses the owner still signs in, promptly: 60 concurrent
attackers, on the login page and the password grant, guessing random usernames and the
owner's from ever new addresses, while the owner signs in 20 times from home, where they
signed in before. Every one of the owner's sign-ins succeeds, and their 95th percentile
latency is at most 1 s (README "Sign-in limits").

The stack is one of its own (Redis and services, at their default settings behind a
trusted proxy), so no other test's load is in the figure. The attackers run in a process
of their own (tests/attackers.py), niced as attackers elsewhere would be, so their work
is neither this process's scheduling delay nor the server's CPU. A sign-in is timed from
sending the credentials to the answer. The figures go to
test-artifacts/sign-in-under-attack.json.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from devtools.local_processes import (
    ProcessGroup,
    ensure_signing_key,
    free_port,
    start_redis,
)
from shared.domain.password_hashing import RFC_9106_LOW_MEMORY
from tests.flows import code_request
from tests.records import PASSWORD, Registered, make_client, make_scope, make_user
from tests.replies import csrf_token, fetch, post_form, query_of
from tests.stack import ARTIFACTS, Stack, connect_single_server, start_stack

ATTACKERS = 60
SIGN_INS = 20
P95_LIMIT = 1.0
HOME = "192.0.2.10"  # the owner's address, as the trusted proxy reports it
ATTACKERS_SCRIPT = Path(__file__).with_name("attackers.py")
LOGS = ARTIFACTS / "logs" / "besieged"


@pytest.fixture(scope="module")
def besieged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Every guess is logged: some tens of MB a run, not kept from the last, and in a
    # folder of their own, which the run's search of every log for secrets at its end
    # (tests/conftest.py) leaves out; this test searches them for its own.
    LOGS.mkdir(parents=True, exist_ok=True)
    for log in LOGS.glob("*.log"):
        log.unlink()
    group = ProcessGroup()
    try:
        redis_url = start_redis(
            group, free_port(), tmp_path_factory.mktemp("besieged-redis"), persistent=False
        )
        yield start_stack(
            group,
            redis_url,
            ensure_signing_key(tmp_path_factory.mktemp("besieged-keys")),
            log_prefix=f"{LOGS.name}/",
            extra_env={"TESSERA_TRUSTED_PROXIES": "127.0.0.1"},
            # The production cost of a password check: it is what the attackers spend.
            hashing=RFC_9106_LOW_MEMORY,
        )
    finally:
        group.stop()


class Owner:
    """The person, from home, through either door; each sign-in timed from sending the
    credentials to the answer."""

    def __init__(
        self, http: aiohttp.ClientSession, stack: Stack, user: str, client: Registered, scope: str
    ) -> None:
        self.http, self.stack, self.user, self.scope = http, stack, user, scope
        self.client = client

    async def by_password_grant(self) -> tuple[bool, float]:
        start = time.perf_counter()
        reply = await post_form(
            self.http,
            f"{self.stack.token}/token",
            {
                "grant_type": "password",
                "username": self.user,
                "password": PASSWORD,
                "scope": self.scope,
                "client_id": self.client.client_id,
                "client_secret": self.client.secret or "",
            },
            {"X-Forwarded-For": HOME},
        )
        return reply.status == 200, time.perf_counter() - start

    async def by_login_page(self) -> tuple[bool, float]:
        async with aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"X-Forwarded-For": HOME}
        ) as browser:
            params = code_request(self.client, self.scope)
            started = await fetch(
                browser, "GET", f"{self.stack.authorize}/authorize", params=params
            )
            page = await fetch(browser, "GET", f"{self.stack.authorize}{started.location}")
            start = time.perf_counter()
            answer = await fetch(
                browser,
                "POST",
                f"{self.stack.authorize}/login",
                data={
                    "interaction": query_of(started.location)["interaction"],
                    "csrf_token": csrf_token(page.text),
                    "username": self.user,
                    "password": PASSWORD,
                },
            )
            took = time.perf_counter() - start
        return answer.status == 303 and answer.location.startswith("/consent?"), took


def p95(values: list[float]) -> float:
    """The nearest-rank 95th percentile."""
    return sorted(values)[math.ceil(0.95 * len(values)) - 1]


# No other test's load in the figure: nothing runs in the other worker meanwhile.
@pytest.mark.alone
async def test_the_owner_signs_in_promptly_while_60_attackers_guess(besieged: Stack) -> None:
    redis = connect_single_server(besieged.redis_url)
    try:
        scope = await make_scope(redis)
        user = await make_user(redis, RFC_9106_LOW_MEMORY)
        client = await make_client(redis, [scope], grants=["authorization_code", "password"])
    finally:
        await redis.aclose()
    assert client.secret

    async with aiohttp.ClientSession() as http:
        owner = Owner(http, besieged, user, client, scope)
        # The owner has signed in from home before (that is what makes it home).
        signed_in, _ = await owner.by_password_grant()
        assert signed_in

        attackers = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ATTACKERS_SCRIPT),
            orjson.dumps(
                {
                    "authorize": besieged.authorize,
                    "token": besieged.token,
                    "client_id": client.client_id,
                    "client_secret": client.secret,
                    "scope": scope,
                    "target": user,
                    "attackers": ATTACKERS,
                }
            ).decode(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert attackers.stdin and attackers.stdout
        try:
            # The attackers say when all of them are guessing.
            assert await asyncio.wait_for(attackers.stdout.readline(), 60) == b"attacking\n"
            await asyncio.sleep(1)
            results = []
            for i in range(SIGN_INS):
                door = owner.by_login_page if i % 2 else owner.by_password_grant
                results.append((door.__name__, *await door()))
                await asyncio.sleep(0.2)
        finally:
            attackers.stdin.close()  # the signal to stop
            report, _ = await asyncio.wait_for(attackers.communicate(), 60)
    attack = orjson.loads(report)

    latencies = [took for _, _, took in results]
    figures = {
        "sign_ins": len(results),
        "succeeded": sum(ok for _, ok, _ in results),
        "p95_seconds": round(p95(latencies), 3),
        "max_seconds": round(max(latencies), 3),
        "median_seconds": round(sorted(latencies)[len(latencies) // 2], 3),
        "by_door": {
            door: [round(took, 3) for name, _, took in results if name == door]
            for door in ("by_password_grant", "by_login_page")
        },
        "attack": attack,
    }
    (ARTIFACTS / "sign-in-under-attack.json").write_bytes(
        orjson.dumps(figures, option=orjson.OPT_INDENT_2)
    )
    print(f"\nsign-in under attack: {orjson.dumps(figures).decode()}")

    # The attack was real: many guesses on both doors, each from a new address.
    for door_name in ("login page", "password grant"):
        sent = sum(n for answer, n in attack["answers"].items() if answer.startswith(door_name))
        assert sent > 10 * ATTACKERS, attack
    assert [ok for _, ok, _ in results] == [True] * SIGN_INS
    assert figures["p95_seconds"] <= P95_LIMIT
    for log in LOGS.glob("*.log"):
        text = log.read_text()
        assert PASSWORD not in text
        assert client.secret not in text
