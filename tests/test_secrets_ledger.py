"""The ledger of credentials the run used, and the search of the logs for them that
fails the run when the session ends (tests/secrets_ledger.py, tests/conftest.py): the
helpers write down what they hand out, and the search finds a secret wherever a line
holds it."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from redis.asyncio import Redis

from tests.flows import exchange, obtain_code
from tests.records import PASSWORD, make_setup
from tests.replies import session_cookie
from tests.secrets_ledger import SECRETS_USED, secrets_in_logs
from tests.stack import ADMIN_TOKEN, Stack


async def test_the_ledger_holds_what_a_flow_hands_out_and_sends(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    setup = await make_setup(redis, refresh_count=1)
    code = await obtain_code(http, stack, setup)
    reply = await exchange(http, stack, setup.client, code)
    assert reply.status == 200, reply.body

    used = {
        "password": PASSWORD,
        "admin token": ADMIN_TOKEN,
        "client secret": setup.client.secret,
        "code": code,
        "access token": reply.body["access_token"],
        "refresh token": reply.body["refresh_token"],
        "session id": session_cookie(http, stack),
    }
    assert {name for name, value in used.items() if value not in SECRETS_USED} == set()


def test_a_secret_is_found_wherever_a_line_holds_it(tmp_path: Path) -> None:
    token = "Zm9vYmFyLWJhei1xdXV4LTEyMzQ1Njc4OTA"
    dotted = "f4mily_1d.vAlue-0f-a-t0ken"
    password = "pass word+&=/%"
    log = tmp_path / "token.log"
    log.write_text(
        "\n".join(
            [
                '{"message": "nothing secret here", "client_id": "abc"}',
                f'{{"message": "Bearer {token}"}}',  # inside a longer line
                f"x{token}y",  # inside a longer run of token characters
                f"code={dotted}&state=1",
                f"{password[:4]}",  # a part of a password is not the password
                f'"password": "{password}"',
                token[:-1],  # one character short
            ]
        )
        + "\n"
    )
    other = tmp_path / "authorize.log"
    other.write_text(f"{token}\n")

    used = {token, dotted, password, "never-logged-secret-value"}
    assert secrets_in_logs([log, other], used) == [
        ("token.log", 2),
        ("token.log", 3),
        ("token.log", 4),
        ("token.log", 6),
        ("authorize.log", 1),
    ]
    assert secrets_in_logs([log, other], {"never-logged-secret-value"}) == []
