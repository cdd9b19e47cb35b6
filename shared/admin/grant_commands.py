"""``tessera approval ...``, ``tessera token ...`` and ``tessera audit list``: what has been
granted, and what administrators changed."""

from __future__ import annotations

import re
import time
from datetime import datetime

import click

from shared.admin.api_client import segment
from shared.admin.output import Column, when
from shared.admin.session import Refused, Session, output_option, pass_session, read_stdin_line

APPROVAL_COLUMNS = [
    Column("USERNAME", "username"),
    Column("CLIENT_ID", "client_id"),
    Column("SCOPE", "scope"),
    Column("GRANTED", "granted_at"),
    Column("LAST_USED", "last_used_at"),
]
TOKEN_COLUMNS = [
    Column("KIND", "kind"),
    Column("CLIENT_ID", "client_id"),
    Column("USERNAME", "username"),
    Column("SCOPE", "scope"),
    Column("ISSUED", "issued_at"),
    Column("EXPIRES", "expires_at", lambda at: "never" if at is None else when(at)),
]
AUDIT_COLUMNS = [
    Column("TIME", "time"),
    Column("ACTOR", "actor"),
    Column("ACTION", "action"),
    Column("RESOURCE", "resource"),
    Column("RESOURCE_ID", "resource_id"),
]


@click.group()
def approval() -> None:
    """The approvals people gave clients (their connected applications)."""


@approval.command("list")
@click.option("--user", "username", metavar="NAME", help="The approvals this person gave.")
@click.option("--client", "client_id", metavar="ID", help="The approvals given to this client.")
@output_option
@pass_session
def list_approvals(session: Session, username: str | None, client_id: str | None) -> None:
    """List approvals of a person, of a client, or of the two (one at least)."""
    if username is None and client_id is None:
        raise click.UsageError("give --user NAME, --client ID, or both")
    params = {"username": username, "client_id": client_id}
    with session.api() as api:
        found = api.list_all("/approvals", {k: v for k, v in params.items() if v is not None})
    session.emit(found, APPROVAL_COLUMNS)


@approval.command()
@click.argument("username")
@click.argument("client_id")
@output_option
@pass_session
def revoke(session: Session, username: str, client_id: str) -> None:
    """Forget USERNAME's approval of CLIENT_ID and revoke the grants it made (as removing
    the app from the connected applications page does)."""
    with session.api() as api:
        api.delete(f"/approvals/{segment(username)}/{segment(client_id)}")
    session.emit(
        {"username": username, "client_id": client_id, "revoked": True},
        message=f"approval of {client_id} by {username} revoked",
    )


@click.group()
def token() -> None:
    """Live access and refresh tokens (never their values, which Tessera does not store)."""


@token.command("list")
@click.option("--client", "client_id", metavar="ID", help="Only this client's tokens.")
@click.option("--user", "username", metavar="NAME", help="Only this person's tokens.")
@output_option
@pass_session
def list_tokens(session: Session, client_id: str | None, username: str | None) -> None:
    """List live tokens: kind, client, person, scope, issue and expiry times."""
    params = {"client_id": client_id, "username": username}
    with session.api() as api:
        found = api.list_all("/tokens", {k: v for k, v in params.items() if v is not None})
    session.emit(found, TOKEN_COLUMNS)


@token.command("revoke")
@click.option(
    "--token-stdin",
    is_flag=True,
    help="Read the token from standard input (never an argument: it is a credential).",
)
@click.option("--client", "client_id", metavar="ID", help="Revoke every grant of this client.")
@click.option("--user", "username", metavar="NAME", help="Revoke every grant of this person.")
@output_option
@pass_session
def revoke_tokens(
    session: Session, token_stdin: bool, client_id: str | None, username: str | None
) -> None:
    """Revoke a token's whole grant (its access and refresh tokens), or every grant of a
    client or of a person. Give exactly one of the options."""
    if sum((token_stdin, client_id is not None, username is not None)) != 1:
        raise click.UsageError("give exactly one of --token-stdin, --client ID, --user NAME")
    if token_stdin:
        body, what = {"token": read_stdin_line("token")}, "the token"
    elif client_id is not None:
        body, what = {"client_id": client_id}, f"client {client_id}"
    else:
        assert username is not None
        body, what = {"username": username}, f"user {username}"
    with session.api() as api:
        result = api.post("/tokens/revoke", body)
    if token_stdin:
        if not result["revoked_grants"]:
            # The message does not quote the value: it is a credential.
            raise Refused("no live access or refresh token has that value")
        message = "token revoked, with every token of its grant"
    else:
        message = f"{result['revoked_grants']} grant(s) of {what} revoked"
    session.emit(result, message=message)


# --since 15m, 2h, 7d: a time so long ago, as the API's Unix seconds.
_AGO = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def since(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """--since: Unix seconds, an RFC 3339 time, or a duration ago (30m, 12h, 7d), as the
    Unix seconds the API is given."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return text
    ago = _AGO.fullmatch(text)
    if ago:
        return str(int(time.time()) - int(ago[1]) * _UNIT_SECONDS[ago[2]])
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise click.BadParameter(
            f"{text!r} is not Unix seconds, an RFC 3339 time with its offset "
            "(2024-05-01T12:00:00Z) or a duration ago (30m, 12h, 7d)"
        )
    return str(int(moment.timestamp()))


@click.group()
def audit() -> None:
    """The audit trail: every change made through the admin API, who made it, and when."""


@audit.command("list")
@click.option(
    "--since",
    metavar="TIME",
    callback=since,
    help="Changes from this time on: Unix seconds, RFC 3339, or ago: 30m, 12h, 7d.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Show at most this many changes, oldest first.",
)
@output_option
@pass_session
def list_audit(session: Session, since: str | None, limit: int) -> None:
    """List audit events: time, actor, action, resource (before and after in json/yaml)."""
    params = {} if since is None else {"since": since}
    with session.api() as api:
        session.emit(api.list_some("/audit", params, limit), AUDIT_COLUMNS)
