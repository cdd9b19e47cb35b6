"""The ``tessera`` administration command against the test Redis: what it writes, what it
prints, and that bad input is refused with a clear message on stderr before anything is
written. The command runs in this process (tests/command_line.py), and as the installed
process where the process is the point: its entry point, exit statuses and standard
input."""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import aiohttp
import orjson
import pytest
from redis.asyncio import Redis

from shared.security import crypto
from shared.storage import keys
from shared.storage.clients import Client
from tests.command_line import TESSERA, assert_refused, tessera, tessera_process
from tests.flows import authorize, code_request, exchange
from tests.records import REDIRECT_URI, Registered, make_scope, make_user, unique
from tests.stack import Stack

LONG_PASSWORD = "a long enough password"


def create_args(scope: str, *extra: str, client_type: str = "confidential") -> list[str]:
    return [
        "client",
        "create",
        "--name",
        unique("CLI app"),
        "--type",
        client_type,
        "--redirect-uri",
        REDIRECT_URI,
        "--grant",
        "authorization_code",
        "--scope",
        scope,
        *extra,
    ]


async def create_client(stack: Stack, scope: str, *extra: str) -> dict[str, Any]:
    run = await tessera(stack, *create_args(scope, *extra, "--json"))
    assert run.status == 0, run.stderr
    created: dict[str, Any] = run.json()
    return created


# --- what the commands do ----------------------------------------------------------------


async def test_scope_add(stack: Stack, redis: Redis) -> None:
    scope = unique("orders:read")

    run = await tessera(stack, "scope", "add", scope, "--description", "Read your orders")

    assert run.status == 0, run.stderr
    assert scope in run.stdout
    assert run.stderr == ""
    record = orjson.loads(await redis.get(keys.scope(scope)) or "{}")
    assert record == {"name": scope, "description": "Read your orders"}
    assert scope in await redis.smembers(keys.SCOPE_INDEX)


async def test_user_add_reads_the_password_from_stdin(stack: Stack, redis: Redis) -> None:
    username = unique("bob")

    # The installed command, as a process: the password comes through a pipe.
    run = await tessera_process(
        stack, "user", "add", username, "--password-stdin", stdin=LONG_PASSWORD + "\n"
    )

    assert run.status == 0, run.stderr
    assert username in run.stdout
    assert LONG_PASSWORD not in run.stdout + run.stderr
    record = orjson.loads(await redis.get(keys.user(username)) or "{}")
    # With the parameters of TESSERA_PASSWORD_HASH_* (the suite's cheap ones).
    assert record["password_hash"].startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert username in await redis.smembers(keys.USER_INDEX)
    # The trailing newline is not part of the password.
    assert crypto.check_password(record["password_hash"], LONG_PASSWORD)
    assert not crypto.check_password(record["password_hash"], LONG_PASSWORD + "\n")


async def test_client_create_prints_the_secret_once(stack: Stack, redis: Redis) -> None:
    scope = await make_scope(redis)

    created = await create_client(stack, scope, "--refresh-count", "3", "--version", "2.1")

    client_id, secret = created["client_id"], created["client_secret"]
    assert client_id and secret
    # Hex, 128 bits: an id never begins with "-", which the CLI would take for an option.
    assert re.fullmatch(r"[0-9a-f]{32}", client_id)
    assert len(secret) >= 43  # 256 bits
    assert created["type"] == "confidential"
    assert created["redirect_uris"] == [REDIRECT_URI]
    assert created["grants"] == ["authorization_code"]
    assert created["scopes"] == [scope]
    assert created["refresh_count"] == 3
    assert created["version"] == "2.1"
    assert created["enabled"] is True
    assert "secret_hash" not in created
    raw = await redis.get(keys.client(client_id))
    assert raw is not None
    assert secret not in raw
    assert orjson.loads(raw)["secret_hash"] == crypto.digest(secret)

    # Not shown again: neither by show nor by list, in JSON or text.
    record = orjson.loads(raw)
    for args in (
        ["client", "show", client_id, "--json"],
        ["client", "show", client_id],
        ["client", "list", "--json"],
        ["client", "list"],
    ):
        run = await tessera(stack, *args)
        assert run.status == 0, run.stderr
        assert client_id in run.stdout
        assert secret not in run.stdout
        assert record["secret_hash"] not in run.stdout
        assert "secret_hash" not in run.stdout
        assert "client_secret" not in run.stdout


async def test_client_create_text_output_says_to_store_the_secret(
    stack: Stack, redis: Redis
) -> None:
    scope = await make_scope(redis)

    run = await tessera(stack, *create_args(scope))

    assert run.status == 0, run.stderr
    assert "client_secret" in run.stdout
    assert "not shown again" in run.stdout


async def test_public_client_has_no_secret(stack: Stack, redis: Redis) -> None:
    scope = await make_scope(redis)

    run = await tessera(stack, *create_args(scope, "--json", client_type="public"))

    assert run.status == 0, run.stderr
    created = run.json()
    assert created["type"] == "public"
    assert "client_secret" not in created
    assert (
        orjson.loads(await redis.get(keys.client(created["client_id"])) or "{}")["secret_hash"]
        is None
    )


async def test_client_show_and_list(stack: Stack, redis: Redis) -> None:
    scope = await make_scope(redis)
    created = await create_client(stack, scope, "--description", "Orders")
    client_id = created["client_id"]

    shown = await tessera(stack, "client", "show", client_id, "--json")
    listed = await tessera(stack, "client", "list", "--json")

    assert shown.status == 0, shown.stderr
    view = shown.json()
    expected = {k: v for k, v in created.items() if k != "client_secret"}
    assert view == expected
    assert view["description"] == "Orders"
    assert listed.status == 0, listed.stderr
    entries = {entry["client_id"]: entry for entry in listed.json()}
    assert entries[client_id] == expected
    assert all("secret_hash" not in entry for entry in entries.values())
    assert set(entries) == await redis.smembers(keys.CLIENT_INDEX)


async def test_client_disable_enable_delete(stack: Stack, redis: Redis) -> None:
    scope = await make_scope(redis)
    client_id = (await create_client(stack, scope))["client_id"]

    async def stored() -> dict[str, Any] | None:
        raw = await redis.get(keys.client(client_id))
        return orjson.loads(raw) if raw else None

    run = await tessera(stack, "client", "disable", client_id)
    assert run.status == 0, run.stderr
    assert (await stored() or {})["enabled"] is False
    assert (await tessera(stack, "client", "show", client_id, "--json")).json()["enabled"] is False

    run = await tessera(stack, "client", "enable", client_id)
    assert run.status == 0, run.stderr
    assert (await stored() or {})["enabled"] is True

    run = await tessera(stack, "client", "delete", client_id)
    assert run.status == 0, run.stderr
    assert await stored() is None
    assert client_id not in await redis.smembers(keys.CLIENT_INDEX)
    gone = await tessera(stack, "client", "show", client_id)
    assert gone.status != 0
    assert f"no client {client_id!r}" in gone.stderr


async def test_a_client_made_with_the_cli_completes_a_code_flow(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    scope = await make_scope(redis)
    user = await make_user(redis)
    created = await create_client(stack, scope)
    client = Registered(
        Client(**{k: v for k, v in created.items() if k != "client_secret"}),
        created["client_secret"],
    )

    back = await authorize(http, stack, code_request(client, scope), user)
    reply = await exchange(http, stack, client, back["code"])

    assert reply.status == 200, reply.body
    assert reply.body["scope"] == scope


# --- bad input is refused and changes nothing --------------------------------------------


async def test_unknown_scope(stack: Stack, redis: Redis) -> None:
    missing = unique("no-such-scope")
    # The installed command, as a process: exit status 1.
    run = await assert_refused(
        stack,
        redis,
        create_args(missing),
        f"scope(s) not defined: {missing}",
        run_command=tessera_process,
    )
    assert run.status == 1


async def test_a_malformed_scope_name_is_refused_even_if_redis_holds_it(
    stack: Stack, redis: Redis
) -> None:
    """RFC 6749 §3.3 at registration too: a definition written around ``scope add`` (or
    by a release before the check) does not make a malformed name registrable."""
    malformed = unique('quo"te')
    await redis.set(keys.scope(malformed), orjson.dumps({"name": malformed, "description": ""}))
    try:
        await assert_refused(stack, redis, create_args(malformed), "not valid scope tokens")
    finally:
        await redis.delete(keys.scope(malformed))


@pytest.mark.parametrize(
    ("uris", "message"),
    [
        pytest.param(
            ("https://app.example.com/cb#frag", "https://app.example.com/cb#"),
            "must not contain a fragment",
            id="with-a-fragment",
        ),
        pytest.param(
            ("/callback", "callback", "//app.example.com/cb", "1app:/cb"),
            "is not a valid absolute URI",
            id="relative-or-no-scheme",
        ),
        pytest.param(
            (
                "https://app.example.com/c b",
                "https://app.example.com/cb\n",
                "https://app.example.com/\tcb",
                "https://app.example.com/cb\x7f",
                "https://app.example.com/cb\u2028",
                " https://app.example.com/cb",
            ),
            "must not contain spaces or control characters",
            id="whitespace-or-control",
        ),
        pytest.param(
            (
                "https://app.example.com/%zz",
                "https://app.example.com/cb?q=%",
                "https://app.example.com/caf\u00e9",
                "https://app.example.com/a<b>",
                'https://app.example.com/cb?q="x"',
                "https://app.example.com/a\\b",
                "https://[::1/cb",
                "https://app.example.com:port/cb",
            ),
            "is not a valid absolute URI (RFC 3986",
            id="not-rfc-3986",
        ),
        pytest.param(
            ("https://app.example.com:65536/cb",), "has an invalid port", id="port-out-of-range"
        ),
        pytest.param(("https:/cb", "https:///cb"), "must name a host", id="https-without-host"),
        pytest.param(
            (
                "https://app.example.com@evil.example.net/cb",
                "https://user:secret@app.example.com/cb",
            ),
            "must not carry a user name or password",
            id="credentials",
        ),
        pytest.param(
            (
                "javascript:alert(1)",
                "data:text/html,hi",
                "file:///etc/passwd",
                "vbscript:msgbox",
                "myapp:/callback",
            ),
            "private-use scheme named by a reversed domain",
            id="not-a-private-use-scheme",
        ),
        pytest.param(
            ("http://app.example.com/cb", "http://10.0.0.5/cb", "http://127.0.0.1.evil.example/"),
            "must use https (http only on loopback)",
            id="plain-http-off-loopback",
        ),
        pytest.param(
            ("https://app.example.com/" + "a" * 2030,),
            "longer than 2048 characters",
            id="too-long",
        ),
    ],
)
async def test_a_bad_redirect_uri(
    stack: Stack, redis: Redis, uris: tuple[str, ...], message: str
) -> None:
    """RFC 6749 §3.1.2, RFC 3986, RFC 8252 §7: every one is refused, and nothing stored."""
    scope = await make_scope(redis)
    for uri in uris:
        args = create_args(scope)
        args[args.index(REDIRECT_URI)] = uri
        await assert_refused(stack, redis, args, message)


async def test_unknown_client_type(stack: Stack, redis: Redis) -> None:
    scope = await make_scope(redis)
    # The installed command, as a process: argparse's usage error, exit status 2.
    run = await assert_refused(
        stack,
        redis,
        create_args(scope, client_type="trusted"),
        "invalid choice: 'trusted'",
        run_command=tessera_process,
    )
    assert "--type" in run.stderr
    assert run.status == 2


async def test_unknown_grant(stack: Stack, redis: Redis) -> None:
    scope = await make_scope(redis)
    await assert_refused(
        stack, redis, [*create_args(scope), "--grant", "urn:example:unknown"], "invalid choice"
    )


async def test_negative_refresh_count(stack: Stack, redis: Redis) -> None:
    scope = await make_scope(redis)
    for extra in (["--refresh-count", "-1"], ["--refresh-count=-5"]):
        await assert_refused(
            stack, redis, create_args(scope, *extra), "refresh count must be 0 or more"
        )


async def test_non_numeric_refresh_count(stack: Stack, redis: Redis) -> None:
    scope = await make_scope(redis)
    await assert_refused(
        stack, redis, create_args(scope, "--refresh-count", "many"), "--refresh-count"
    )


async def test_public_client_with_introspect(stack: Stack, redis: Redis) -> None:
    scope = await make_scope(redis)
    await assert_refused(
        stack,
        redis,
        create_args(scope, "--introspect", client_type="public"),
        "a public client cannot authenticate, so it cannot introspect",
    )


async def test_client_without_a_redirect_uri(stack: Stack, redis: Redis) -> None:
    scope = await make_scope(redis)
    args = create_args(scope)
    at = args.index("--redirect-uri")
    del args[at : at + 2]
    await assert_refused(stack, redis, args, "needs at least one redirect URI")


async def test_duplicate_scope_name(stack: Stack, redis: Redis) -> None:
    scope = await make_scope(redis, "The first description")
    await assert_refused(
        stack,
        redis,
        ["scope", "add", scope, "--description", "A second description"],
        f"scope {scope!r} already exists",
    )
    record = orjson.loads(await redis.get(keys.scope(scope)) or "{}")
    assert record["description"] == "The first description"


async def test_invalid_scope_name(stack: Stack, redis: Redis) -> None:
    # RFC 6749 §3.3: no space, no double quote, no backslash.
    for bad in ("two words", 'quo"te', "back\\slash"):
        await assert_refused(
            stack, redis, ["scope", "add", bad, "--description", "x"], "not a valid scope token"
        )


async def test_unknown_client_id(stack: Stack, redis: Redis) -> None:
    unknown = unique("no-such-client")
    for verb in ("show", "delete", "disable", "enable"):
        await assert_refused(stack, redis, ["client", verb, unknown], f"no client {unknown!r}")


async def test_user_add_with_a_too_short_password(stack: Stack, redis: Redis) -> None:
    username = unique("carol")
    await assert_refused(
        stack,
        redis,
        ["user", "add", username, "--password-stdin"],
        "password must be at least 8 characters",
        stdin="short\n",
    )
    assert await redis.exists(keys.user(username)) == 0


async def test_user_add_with_an_empty_stdin(stack: Stack, redis: Redis) -> None:
    await assert_refused(
        stack,
        redis,
        ["user", "add", unique("dave"), "--password-stdin"],
        "password must be at least 8 characters",
        stdin="",
    )


async def test_user_add_without_password_stdin(stack: Stack, redis: Redis) -> None:
    await assert_refused(
        stack, redis, ["user", "add", unique("erin")], "--password-stdin", stdin=LONG_PASSWORD
    )


async def test_user_add_with_a_space_in_the_name(stack: Stack, redis: Redis) -> None:
    await assert_refused(
        stack,
        redis,
        ["user", "add", "two words", "--password-stdin"],
        "username must be non-empty, without spaces",
        stdin=LONG_PASSWORD + "\n",
    )


async def test_user_add_twice(stack: Stack, redis: Redis) -> None:
    username = await make_user(redis)
    before = await redis.get(keys.user(username))
    await assert_refused(
        stack,
        redis,
        ["user", "add", username, "--password-stdin"],
        f"user {username!r} already exists",
        stdin="another long password\n",
    )
    assert await redis.get(keys.user(username)) == before


async def test_unreachable_redis(stack: Stack) -> None:
    process = await asyncio.create_subprocess_exec(
        TESSERA,
        "client",
        "list",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # Port 1 on loopback: nothing listens there.
        env={**os.environ, "REDIS_URL": "redis://127.0.0.1:1/0"},
    )
    out, err = await process.communicate()
    assert process.returncode != 0
    assert b"cannot reach Redis at REDIS_URL" in err
    assert b"Traceback" not in err
    assert out == b""


async def test_redirect_uris_allowed(stack: Stack, redis: Redis) -> None:
    """RFC 8252 §7.3 loopback http and §7.1 private-use schemes for native apps, and https
    URIs with a query (RFC 6749 §3.1.2), a port and percent-escapes, stored as given."""
    scope = await make_scope(redis)
    for uri in (
        "http://127.0.0.1:8765/cb",
        "http://[::1]/cb",
        "http://localhost:8765/cb",
        "com.example.app:/oauth2redirect",
        "com.example.app://callback",
        "https://app.example.com/cb?tenant=blue&lang=en",
        "https://app.example.com:8443/o%20auth/cb",
    ):
        args = create_args(scope, "--json")
        args[args.index(REDIRECT_URI)] = uri
        run = await tessera(stack, *args)
        assert run.status == 0, run.stderr
        assert orjson.loads(run.stdout)["redirect_uris"] == [uri]


# --- the approval page's per-client settings -----------------------------------------------


async def test_client_logo_uri_and_remember_consent(stack: Stack, redis: Redis) -> None:
    scope = await make_scope(redis)
    logo = "https://cdn.example.com/logos/orders.png?v=2"

    plain = await create_client(stack, scope)
    chosen = await create_client(stack, scope, "--logo-uri", logo, "--remember-consent", "yes")

    # Off by default: the approval page is shown every time, as in webMethods Integration Server.
    assert plain["logo_uri"] == ""
    assert plain["remember_consent"] is False
    assert chosen["logo_uri"] == logo
    assert chosen["remember_consent"] is True
    stored = orjson.loads(await redis.get(keys.client(chosen["client_id"])) or "{}")
    assert (stored["logo_uri"], stored["remember_consent"]) == (logo, True)
    shown = await tessera(stack, "client", "show", chosen["client_id"])
    assert shown.status == 0, shown.stderr
    assert logo in shown.stdout


@pytest.mark.parametrize(
    ("logo", "message"),
    [
        pytest.param("javascript:alert(document.cookie)", "must be an absolute https URL", id="js"),
        pytest.param("JavaScript:alert(1)//https://x", "must be an absolute https URL", id="JS"),
        pytest.param(
            "data:image/svg+xml;base64,PHN2Zy8+", "must be an absolute https URL", id="data"
        ),
        pytest.param("http://cdn.example.com/logo.png", "must be an absolute https URL", id="http"),
        pytest.param("//cdn.example.com/logo.png", "must be an absolute https URL", id="relative"),
        pytest.param("https://", "must be an absolute https URL", id="no-host"),
        pytest.param(
            "https://user:pw@cdn.example.com/logo.png", "must not carry credentials", id="userinfo"
        ),
        pytest.param(
            'https://cdn.example.com/a" onerror="alert(1).png',
            "must not contain spaces or control characters",
            id="attribute-break",
        ),
        pytest.param(
            "https://cdn.example.com/" + "a" * 2048, "longer than 2048 characters", id="too-long"
        ),
    ],
)
async def test_a_bad_logo_uri_is_refused(
    stack: Stack, redis: Redis, logo: str, message: str
) -> None:
    """RFC 7591 §2 logo_uri, https only: the approval page's img must never run a script
    or load over plain http."""
    scope = await make_scope(redis)
    await assert_refused(stack, redis, create_args(scope, "--logo-uri", logo), message)


@pytest.mark.parametrize(
    "uri", ["com.example.app:/oauth2redirect", "http://127.0.0.1:8765/cb"], ids=["scheme", "loop"]
)
async def test_a_native_public_client_cannot_remember_consent(
    stack: Stack, redis: Redis, uri: str
) -> None:
    """RFC 8252 §8.6: another app can claim a private-use scheme or a loopback port."""
    scope = await make_scope(redis)
    args = create_args(scope, "--remember-consent", "yes", client_type="public")
    args[args.index(REDIRECT_URI)] = uri
    await assert_refused(stack, redis, args, "cannot remember consent")
    # The same client without remembering, and a public web app with https, are fine.
    args.remove("yes")
    args.remove("--remember-consent")
    assert (await tessera(stack, *args)).status == 0
    web_app = create_args(scope, "--remember-consent", "yes", "--json", client_type="public")
    run = await tessera(stack, *web_app)
    assert run.status == 0, run.stderr
    assert run.json()["remember_consent"] is True


async def test_a_client_allowed_implicit_remembers_only_with_https_redirects(
    stack: Stack, redis: Redis
) -> None:
    """The implicit grant sends the token itself to the redirect URI (RFC 6749 §4.2.2):
    a confidential client's secret does not protect it, so the public clients' rule
    applies."""
    scope = await make_scope(redis)
    args = create_args(scope, "--grant", "implicit", "--remember-consent", "yes")
    args[args.index(REDIRECT_URI)] = "http://127.0.0.1:8765/cb"
    await assert_refused(stack, redis, args, "cannot remember consent")
    web_app = create_args(scope, "--grant", "implicit", "--remember-consent", "yes", "--json")
    run = await tessera(stack, *web_app)
    assert run.status == 0, run.stderr


async def test_remember_consent_takes_yes_or_no_only(stack: Stack, redis: Redis) -> None:
    scope = await make_scope(redis)
    await assert_refused(
        stack, redis, create_args(scope, "--remember-consent", "always"), "invalid choice"
    )
