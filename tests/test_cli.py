"""The ``tessera`` command against the session stack's admin API: what each command asks
the API for and prints in each format, and that bad input is refused with one line on
stderr and changes nothing (the API lists the same clients, scopes and users after).

The command runs in this process (tests/command_line.py), and as the installed process
where the process is the point: its entry point, --version, completion, exit statuses
and standard input through a pipe.
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import aiohttp
import click
import pytest
import yaml
from redis.asyncio import Redis

from shared.admin import cli
from shared.storage.clients import Client
from tests.command_line import TESSERA, assert_refused, listing, tessera, tessera_process
from tests.flows import authorize, code_request, exchange, token_request
from tests.records import REDIRECT_URI, Registered, make_scope, make_setup, make_user, unique
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
    run = await tessera(stack, *create_args(scope, *extra), "-o", "json")
    assert run.status == 0, run.stderr
    created: dict[str, Any] = run.json()
    return created


def registered(created: dict[str, Any], grants: list[str]) -> Registered:
    """The created client as the flows of tests/flows.py take one."""
    client = Client(
        client_id=created["client_id"],
        name=created["client_name"],
        type="public" if created["token_endpoint_auth_method"] == "none" else "confidential",
        redirect_uris=created["redirect_uris"],
        grants=grants,
        scopes=created["scope"].split(),
    )
    return Registered(client, created.get("client_secret"))


# --- the command itself ----------------------------------------------------------------


def every_command(group: click.Group, path: str = "tessera") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = [(path, group)]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += every_command(command, f"{path} {name}")
        else:
            found.append((f"{path} {name}", command))
    return found


def test_every_command_and_option_has_help() -> None:
    commands = every_command(cli.tessera)
    assert len(commands) > 35
    for path, command in commands:
        assert command.help or command.short_help, path
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{path} {param.opts}"


def test_no_option_takes_a_secret_as_its_value() -> None:
    """A secret is read from standard input or a file, never from the command line,
    where the process list and the shell's history would show it."""
    for path, command in every_command(cli.tessera):
        for param in command.params:
            for opt in getattr(param, "opts", []):
                takes_a_value = not getattr(param, "is_flag", False)
                assert not (takes_a_value and re.search(r"(secret|password|token)$", opt)), (
                    f"{path} {opt}"
                )


async def test_version_and_completion_of_the_installed_command(stack: Stack) -> None:
    version = await tessera_process(stack, "--version")
    assert (version.status, version.stdout) == (0, "tessera 0.1.0\n")

    script = await tessera_process(stack, env={"_TESSERA_COMPLETE": "bash_source"})
    assert script.status == 0, script.stderr
    assert "complete -o nosort -F _tessera_completion tessera" in script.stdout
    # What bash asks for as one types "tessera cl<TAB>" and "tessera client r<TAB>".
    words = {"_TESSERA_COMPLETE": "bash_complete", "COMP_WORDS": "tessera cl", "COMP_CWORD": "1"}
    assert (await tessera_process(stack, env=words)).stdout.split() == ["plain,client"]
    words |= {"COMP_WORDS": "tessera client r", "COMP_CWORD": "2"}
    assert (await tessera_process(stack, env=words)).stdout.split() == ["plain,rotate-secret"]


async def test_exit_statuses_and_one_line_messages_of_the_installed_command(
    stack: Stack, redis: Redis
) -> None:
    # A usage error: 2.
    run = await assert_refused(
        stack,
        ["client", "create", "--grant", "urn:example:x"],
        "--grant",
        run_command=tessera_process,
    )
    assert run.status == 2
    assert "(see 'tessera client create --help')" in run.stderr
    # The API refuses: 1.
    missing = unique("no-such-scope")
    run = await assert_refused(stack, create_args(missing), missing, run_command=tessera_process)
    assert run.status == 1
    # Nothing listens: 1, and no traceback.
    nowhere = await tessera_process(
        stack, "client", "list", env={"TESSERA_ADMIN_URL": "http://127.0.0.1:1"}
    )
    assert nowhere.status == 1
    assert nowhere.stderr.startswith("tessera: error: cannot reach the admin API at ")
    assert (nowhere.stdout, nowhere.stderr.count("\n")) == ("", 1)


async def test_without_a_server_or_a_credential_nothing_is_sent(stack: Stack) -> None:
    no_server = await tessera(stack, "scope", "list", env={"TESSERA_ADMIN_URL": ""})
    assert (no_server.status, no_server.stderr) == (
        1,
        "tessera: error: no admin API: give --server URL or set TESSERA_ADMIN_URL\n",
    )
    no_credential = await tessera(stack, "scope", "list", env={"TESSERA_ADMIN_TOKEN": ""})
    assert no_credential.status == 1
    assert (
        "no admin credential: set TESSERA_ADMIN_TOKEN or give --token-file" in no_credential.stderr
    )
    wrong = await tessera(stack, "scope", "list", env={"TESSERA_ADMIN_TOKEN": "not-the-token"})
    assert wrong.status == 1
    assert wrong.stderr.startswith("tessera: error: ")


async def test_the_credential_from_a_file_and_the_server_as_an_option(
    stack: Stack, tmp_path: Any
) -> None:
    from tests.stack import ADMIN_TOKEN

    credential = tmp_path / "admin-token"
    credential.write_text(ADMIN_TOKEN + "\n")
    run = await tessera(
        stack,
        "--server",
        stack.admin,
        "--token-file",
        str(credential),
        "scope",
        "list",
        env={"TESSERA_ADMIN_URL": "", "TESSERA_ADMIN_TOKEN": ""},
    )
    assert run.status == 0, run.stderr
    assert "openid" in run.stdout


# --- output formats ----------------------------------------------------------------------


async def test_json_output_parses(stack: Stack, redis: Redis) -> None:
    scope = await make_scope(redis)
    created = await create_client(stack, scope)
    run = await tessera(stack, "-o", "json", "client", "list", "--scope", scope)
    assert run.status == 0, run.stderr
    assert [c["client_id"] for c in run.json()] == [created["client_id"]]


async def test_yaml_output_parses(stack: Stack, redis: Redis) -> None:
    scope = await make_scope(redis)
    created = await create_client(stack, scope)
    run = await tessera(stack, "client", "show", created["client_id"], "-o", "yaml")
    assert run.status == 0, run.stderr
    shown = yaml.safe_load(run.stdout)
    assert shown == {k: v for k, v in created.items() if k != "client_secret"}


async def test_table_output_has_headers(stack: Stack, redis: Redis) -> None:
    scope = await make_scope(redis)
    created = await create_client(stack, scope)
    listed = await tessera(stack, "client", "list", "--scope", scope)
    assert listed.status == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["CLIENT_ID", "NAME", "TYPE", "ENABLED", "GRANTS", "SCOPE"]
    assert row.split()[0] == created["client_id"]
    shown = await tessera(stack, "client", "show", created["client_id"])
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["FIELD", "VALUE"]
    assert ["client_id", created["client_id"]] in [line.split() for line in lines]
    scopes = await tessera(stack, "scope", "list")
    assert scopes.stdout.splitlines()[0].split() == ["NAME", "BUILT_IN", "DESCRIPTION", "RESOURCES"]


# --- clients -------------------------------------------------------------------------------


async def test_client_create_prints_the_secret_once(stack: Stack, redis: Redis) -> None:
    scope = await make_scope(redis)

    created = await create_client(stack, scope, "--refresh-count", "3", "--client-version", "2.1")

    client_id, secret = created["client_id"], created["client_secret"]
    assert len(secret) >= 43  # 256 bits
    assert created["token_endpoint_auth_method"] == "client_secret_basic"
    assert created["redirect_uris"] == [REDIRECT_URI]
    assert created["scope"] == scope
    assert created["refresh_count"] == 3
    assert created["client_version"] == "2.1"
    assert created["enabled"] is True
    # Not shown again, in any format.
    for args in (
        ["client", "show", client_id, "-o", "json"],
        ["client", "show", client_id, "-o", "yaml"],
        ["client", "show", client_id],
        ["client", "list", "-o", "json"],
        ["client", "list"],
    ):
        run = await tessera(stack, *args)
        assert run.status == 0, run.stderr
        assert client_id in run.stdout
        assert secret not in run.stdout
        assert '"client_secret"' not in run.stdout
        assert "client_secret " not in run.stdout
        assert "client_secret:" not in run.stdout
    # The table says to store it; the note goes to stderr, so that -o json stays JSON.
    run = await tessera(stack, *create_args(scope))
    assert run.status == 0, run.stderr
    assert "client_secret" in run.stdout
    assert "not shown again" in run.stderr


async def test_the_rfc_7591_refresh_token_grant_and_the_openid_connect_fields(
    stack: Stack, redis: Redis
) -> None:
    scope = await make_scope(redis)
    created = await create_client(
        stack,
        scope,
        "--grant",
        "refresh_token",
        "--post-logout-redirect-uri",
        "https://app.example.com/signed-out",
        "--backchannel-logout-uri",
        "https://app.example.com/logout",
        "--subject-type",
        "pairwise",
        "--sector-identifier",
        "app.example.com",
    )
    assert set(created["grant_types"]) == {"authorization_code", "refresh_token"}
    assert created["refresh_count"] > 0  # the API's default for refresh_token
    assert created["post_logout_redirect_uris"] == ["https://app.example.com/signed-out"]
    assert created["backchannel_logout_uri"] == "https://app.example.com/logout"
    assert (created["subject_type"], created["sector_identifier"]) == (
        "pairwise",
        "app.example.com",
    )


async def test_client_update_changes_only_what_is_given(stack: Stack, redis: Redis) -> None:
    scope = await make_scope(redis)
    created = await create_client(stack, scope, "--description", "Orders")
    client_id = created["client_id"]

    run = await tessera(
        stack,
        "client",
        "update",
        client_id,
        "--access-token-lifetime",
        "600",
        "--token-format",
        "jwt",
        "--clear",
        "description",
        "-o",
        "json",
    )

    assert run.status == 0, run.stderr
    updated = run.json()
    assert (updated["access_token_lifetime"], updated["access_token_format"]) == (600, "jwt")
    assert updated["description"] == ""
    unchanged = {"client_name", "redirect_uris", "scope", "grant_types", "created_at"}
    assert {k: updated[k] for k in unchanged} == {k: created[k] for k in unchanged}
    back = await tessera(
        stack, "client", "update", client_id, "--access-token-lifetime", "global", "-o", "json"
    )
    assert back.json()["access_token_lifetime"] is None


async def test_client_disable_enable_delete(stack: Stack, redis: Redis) -> None:
    scope = await make_scope(redis)
    client_id = (await create_client(stack, scope))["client_id"]

    async def shown() -> Any:
        return (await tessera(stack, "client", "show", client_id, "-o", "json")).json()

    run = await tessera(stack, "client", "disable", client_id)
    assert (run.status, run.stdout) == (0, f"client {client_id} disabled\n")
    assert (await shown())["enabled"] is False
    run = await tessera(stack, "client", "enable", client_id, "-o", "json")
    assert run.json()["enabled"] is True
    assert (await shown())["enabled"] is True

    run = await tessera(stack, "client", "delete", client_id)
    assert (run.status, run.stdout) == (0, f"client {client_id} deleted\n")
    gone = await tessera(stack, "client", "show", client_id)
    assert gone.status == 1
    assert client_id in gone.stderr


async def test_a_client_made_with_the_cli_completes_a_code_flow(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    scope = await make_scope(redis)
    user = await make_user(redis)
    client = registered(await create_client(stack, scope), ["authorization_code"])

    back = await authorize(http, stack, code_request(client, scope), user)
    reply = await exchange(http, stack, client, back["code"])

    assert reply.status == 200, reply.body
    assert reply.body["scope"] == scope


async def test_rotate_secret_and_import_a_client_id_and_secret(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    scope = await make_scope(redis)
    client_id, kept = unique("wm-client"), "a-secret-kept-from-before-the-move-" + unique("x")
    run = await tessera(
        stack,
        "client",
        "create",
        "--client-id",
        client_id,
        "--client-secret-stdin",
        "--name",
        "Moved over",
        "--type",
        "confidential",
        "--grant",
        "client_credentials",
        "--scope",
        scope,
        "-o",
        "json",
        stdin=kept + "\n",
    )
    assert run.status == 0, run.stderr
    assert run.json()["client_id"] == client_id
    old = registered({**run.json(), "client_secret": kept}, ["client_credentials"])
    form = {"grant_type": "client_credentials", "scope": scope}
    assert (await token_request(http, stack, old, form)).status == 200

    rotated = await tessera(
        stack, "client", "rotate-secret", client_id, "--overlap", "0", "-o", "json"
    )

    assert rotated.status == 0, rotated.stderr
    new = registered({**run.json(), "client_secret": rotated.json()["client_secret"]}, [])
    assert (await token_request(http, stack, new, form)).status == 200
    assert (await token_request(http, stack, old, form)).status == 401


# --- scopes ---------------------------------------------------------------------------------


async def test_scope_add_update_show_delete(stack: Stack, redis: Redis) -> None:
    name = unique("orders:read")
    run = await tessera(
        stack,
        "scope",
        "add",
        name,
        "--description",
        "Read your orders",
        "--resource",
        "GET /orders",
    )
    assert (run.status, run.stdout, run.stderr) == (0, f"scope {name} added\n", "")

    run = await tessera(
        stack, "scope", "update", name, "--resource", "GET /orders/{order_id}", "-o", "json"
    )
    assert run.status == 0, run.stderr
    assert run.json()["resources"] == ["GET /orders/{order_id}"]
    assert run.json()["description"] == "Read your orders"

    shown = (await tessera(stack, "scope", "show", name, "-o", "json")).json()
    assert (shown["name"], shown["clients"], shown["built_in"]) == (name, [], False)
    assert (await tessera(stack, "scope", "delete", name)).stdout == f"scope {name} deleted\n"
    assert name not in (await tessera(stack, "scope", "list")).stdout


async def test_a_scope_in_use_is_not_deleted(stack: Stack, redis: Redis) -> None:
    s = await make_setup(redis)
    run = await assert_refused(stack, ["scope", "delete", s.scope], s.client.client_id)
    assert run.status == 1


# --- users ----------------------------------------------------------------------------------


async def test_user_add_with_claims_update_and_clear(stack: Stack) -> None:
    username = unique("bob")
    # The installed command, as a process: the password comes through a pipe.
    run = await tessera_process(
        stack,
        "user",
        "add",
        username,
        "--password-stdin",
        "--name",
        "Bob Smith",
        "--email",
        "bob@example.com",
        "--email-verified",
        "--address-locality",
        "Lyon",
        "-o",
        "json",
        stdin=LONG_PASSWORD + "\n",
    )
    assert run.status == 0, run.stderr
    assert LONG_PASSWORD not in run.stdout + run.stderr
    claims = run.json()["claims"]
    assert claims["name"] == "Bob Smith"
    assert claims["email_verified"] is True
    assert claims["address"] == {"locality": "Lyon"}

    run = await tessera(
        stack, "user", "update", username, "--locale", "fr-FR", "--clear", "email", "-o", "json"
    )
    assert run.status == 0, run.stderr
    claims = run.json()["claims"]
    assert (claims["locale"], claims["name"]) == ("fr-FR", "Bob Smith")
    assert "email" not in claims

    listed = await tessera(stack, "user", "list")
    assert listed.stdout.splitlines()[0].split() == [
        "USERNAME",
        "ENABLED",
        "LOCKED",
        "NAME",
        "EMAIL",
    ]
    assert username in listed.stdout


async def test_a_user_signs_in_with_the_password_set_and_not_once_disabled(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis, grants=["password"])
    new_password = "another long password " + unique("p")
    form = {"grant_type": "password", "username": s.user, "password": new_password}
    form["scope"] = s.scope

    run = await tessera(
        stack, "user", "set-password", s.user, "--password-stdin", stdin=new_password
    )
    assert run.status == 0, run.stderr
    assert (await token_request(http, stack, s.client, form)).status == 200

    assert (await tessera(stack, "user", "disable", s.user)).status == 0
    assert (await token_request(http, stack, s.client, form)).status == 400
    assert (await tessera(stack, "user", "enable", s.user)).status == 0
    assert (await token_request(http, stack, s.client, form)).status == 200

    assert (await tessera(stack, "user", "delete", s.user)).stdout == f"user {s.user} deleted\n"
    assert (await tessera(stack, "user", "show", s.user)).status == 1


# --- approvals, tokens and the audit trail ---------------------------------------------------


async def test_approval_list_and_revoke(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    back = await authorize(http, stack, code_request(s.client, s.scope), s.user)
    tokens = (await exchange(http, stack, s.client, back["code"])).body

    run = await tessera(stack, "approval", "list", "--user", s.user, "-o", "json")
    assert run.status == 0, run.stderr
    (approval,) = run.json()
    assert (approval["client_id"], approval["scope"]) == (s.client.client_id, [s.scope])

    run = await tessera(stack, "approval", "revoke", s.user, s.client.client_id)
    assert run.status == 0, run.stderr
    assert (await tessera(stack, "approval", "list", "--user", s.user, "-o", "json")).json() == []
    revoked = await tessera(stack, "token", "list", "--user", s.user, "-o", "json")
    assert tokens["access_token"] not in revoked.stdout
    assert revoked.json() == []


async def test_the_audit_trail_lists_the_commands_changes(stack: Stack, redis: Redis) -> None:
    name = unique("audited")
    assert (await tessera(stack, "scope", "add", name, "--description", "x")).status == 0
    assert (await tessera(stack, "scope", "delete", name)).status == 0

    run = await tessera(stack, "audit", "list", "--since", "5m", "--limit", "500", "-o", "json")

    assert run.status == 0, run.stderr
    mine = [(e["action"], e["actor"]) for e in run.json() if e["resource_id"] == name]
    assert mine == [("create", "bootstrap"), ("delete", "bootstrap")]
    table = await tessera(stack, "audit", "list", "--since", "5m", "--limit", "500")
    assert table.stdout.splitlines()[0].split() == [
        "TIME",
        "ACTOR",
        "ACTION",
        "RESOURCE",
        "RESOURCE_ID",
    ]


# --- bootstrap and the Redis-side commands --------------------------------------------------


async def test_bootstrap_admin_client_then_administer_with_its_token(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """The first steps: a client made straight in Redis, whose client-credentials token
    then administers through the API, audited as that client."""
    run = await tessera(stack, "bootstrap", "admin-client", "--name", "Operations", "-o", "json")
    assert run.status == 0, run.stderr
    made = run.json()
    assert (made["grant_types"], made["scope"]) == (["client_credentials"], "tessera:admin")
    admin = registered(
        {**made, "token_endpoint_auth_method": "client_secret_basic", "redirect_uris": []},
        ["client_credentials"],
    )
    reply = await token_request(http, stack, admin, {"grant_type": "client_credentials"})
    assert reply.status == 200, reply.body
    access_token = reply.body["access_token"]

    name = unique("by-operations")
    run = await tessera(
        stack, "scope", "add", name, "--description", "x", env={"TESSERA_ADMIN_TOKEN": access_token}
    )
    assert run.status == 0, run.stderr
    audit = (
        await tessera(stack, "audit", "list", "--since", "5m", "--limit", "500", "-o", "json")
    ).json()
    assert [e["actor"] for e in audit if e["resource_id"] == name] == [
        f"client:{made['client_id']}"
    ]
    # The bootstrap's own change is in the trail too, though it bypassed the API.
    assert [e["actor"] for e in audit if e["resource_id"] == made["client_id"]] == ["bootstrap-cli"]


async def test_log_fingerprint_reads_the_value_from_stdin(stack: Stack) -> None:
    first = await tessera(stack, "log", "fingerprint", stdin="a value\n")
    again = await tessera(stack, "log", "fingerprint", stdin="a value")
    other = await tessera(stack, "log", "fingerprint", stdin="another value")
    assert first.status == 0, first.stderr
    assert first.stdout == again.stdout != other.stdout
    assert "a value" not in first.stdout


async def test_unreachable_redis_for_the_redis_side_commands(stack: Stack) -> None:
    process = await asyncio.create_subprocess_exec(
        TESSERA,
        "log",
        "fingerprint",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # Port 1 on loopback: nothing listens there.
        env={**os.environ, "REDIS_URL": "redis://127.0.0.1:1/0"},
    )
    out, err = await process.communicate(b"a value\n")
    assert process.returncode == 1
    assert err.startswith(b"tessera: error: cannot reach Redis at REDIS_URL")
    assert (out, b"Traceback" in err) == (b"", False)


# --- bad input is refused and changes nothing ------------------------------------------------


async def test_an_undefined_scope_is_refused(stack: Stack) -> None:
    missing = unique("no-such-scope")
    await assert_refused(stack, create_args(missing), missing)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(["--grant", "urn:example:unknown"], "Invalid value for '--grant'", id="grant"),
        pytest.param(
            ["--refresh-count", "-1"], "Invalid value for '--refresh-count'", id="negative"
        ),
        pytest.param(["--refresh-count", "many"], "Invalid value for '--refresh-count'", id="nan"),
        pytest.param(["--access-token-lifetime", "soon"], "--access-token-lifetime", id="lifetime"),
        pytest.param(["--scope", 'quo"te'], "not a valid scope token", id="scope-token"),
        pytest.param(
            ["--subject-type", "secret"], "Invalid value for '--subject-type'", id="subject"
        ),
    ],
)
async def test_bad_options_are_refused_before_any_request(
    stack: Stack, redis: Redis, extra: list[str], message: str
) -> None:
    scope = await make_scope(redis)
    run = await assert_refused(stack, create_args(scope, *extra), message)
    assert run.status == 2


@pytest.mark.parametrize(
    ("extra", "client_type", "field"),
    [
        pytest.param(
            ["--redirect-uri", "https://app.example.com/cb#frag"],
            "confidential",
            "redirect",
            id="fragment",
        ),
        pytest.param(
            ["--redirect-uri", "http://app.example.com/cb"],
            "confidential",
            "redirect",
            id="plain-http",
        ),
        pytest.param(["--logo-uri", "javascript:alert(1)"], "confidential", "logo", id="logo"),
        pytest.param(["--introspect"], "public", "introspect", id="public-introspect"),
    ],
)
async def test_what_the_api_refuses_is_shown_as_its_problem_details(
    stack: Stack, redis: Redis, extra: list[str], client_type: str, field: str
) -> None:
    scope = await make_scope(redis)
    args = create_args(scope, *extra, client_type=client_type)
    if "--redirect-uri" in extra:
        # The bad one alone.
        at = args.index(REDIRECT_URI)
        del args[at - 1 : at + 1]
    run = await assert_refused(stack, args, "tessera: error: ")
    assert run.status == 1
    assert field in run.stderr


async def test_a_duplicate_scope_is_refused_and_the_first_kept(stack: Stack, redis: Redis) -> None:
    scope = await make_scope(redis, "The first description")
    await assert_refused(stack, ["scope", "add", scope, "--description", "Another"], scope)
    shown = (await tessera(stack, "scope", "show", scope, "-o", "json")).json()
    assert shown["description"] == "The first description"


async def test_an_unknown_client_id_is_refused_naming_it(stack: Stack) -> None:
    unknown = unique("no-such-client")
    for verb in ("show", "delete", "disable", "enable", "rotate-secret"):
        await assert_refused(stack, ["client", verb, unknown], unknown)


async def test_user_add_refusals(stack: Stack, redis: Redis) -> None:
    username = unique("carol")
    for args, stdin, message in (
        (["user", "add", username, "--password-stdin"], "short\n", "8"),
        (["user", "add", username, "--password-stdin"], "", "no password on standard input"),
        (["user", "add", username], LONG_PASSWORD, "--password-stdin"),
        (["user", "add", "two words", "--password-stdin"], LONG_PASSWORD, "username"),
        (
            ["user", "add", username, "--password-stdin", "--address", "[1]"],
            LONG_PASSWORD,
            "--address",
        ),
        (["user", "update", username], None, "nothing to change"),
    ):
        await assert_refused(stack, args, message, stdin=stdin)
    existing = await make_user(redis)
    await assert_refused(
        stack, ["user", "add", existing, "--password-stdin"], existing, stdin=LONG_PASSWORD
    )


async def test_a_refused_command_leaves_the_listing_as_it_was(stack: Stack) -> None:
    """The check of assert_refused itself: it sees a change when there is one."""
    before = await listing(stack)
    name = unique("seen")
    assert (await tessera(stack, "scope", "add", name, "--description", "x")).status == 0
    assert await listing(stack) != before
