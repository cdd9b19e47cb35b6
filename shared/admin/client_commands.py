"""``tessera client ...``: client registrations, with RFC 7591 §2's metadata names in the
API and webMethods Integration Server's words (type, refresh count) on the options."""

from __future__ import annotations

from typing import Any

import click

from shared.admin.api_client import segment
from shared.admin.output import Column
from shared.admin.session import (
    F,
    Session,
    enabled_filter,
    output_option,
    pass_session,
    read_stdin_line,
    say_the_secret_is_shown_once,
    set_enabled,
)
from shared.storage.clients import (
    NO_CLIENT_AUTH,
    REFRESH_GRANT,
    REGISTERED_GRANT_TYPES,
    SECRET_METHODS,
)
from shared.storage.scopes import is_scope_token

# The grants the API knows, refresh_token among them (RFC 7591 §2 grant_types): allowing
# it gives the client a refresh count (the API's default when --refresh-count is not given).
GRANTS = REGISTERED_GRANT_TYPES
# --type: the token endpoint authentication method the API stores (RFC 7591 §2). A
# confidential client may authenticate either way (Basic or in the body) whichever is stored.
AUTH_METHODS = {"confidential": SECRET_METHODS[0], "public": NO_CLIENT_AUTH}
GLOBAL = "global"
# What `client update --clear` empties.
CLEARABLE = (
    "client_version",
    "description",
    "logo_uri",
    "post_logout_redirect_uris",
    "backchannel_logout_uri",
    "default_scope",
    "sector_identifier",
)

COLUMNS = [
    Column("CLIENT_ID", "client_id"),
    Column("NAME", "client_name"),
    Column(
        "TYPE", "token_endpoint_auth_method", lambda m: "public" if m == "none" else "confidential"
    ),
    Column("ENABLED", "enabled"),
    Column("GRANTS", "grant_types"),
    Column("SCOPE", "scope"),
]


def lifetime(_ctx: click.Context, _param: click.Parameter, value: str | None) -> object:
    """--access-token-lifetime: seconds, never (0, as in webMethods Integration Server) or
    global (null: TESSERA_ACCESS_TOKEN_LIFETIME decides)."""
    if value is None or value == GLOBAL:
        return value
    if value == "never":
        return 0
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise click.BadParameter(f"{value!r} is not a positive number of seconds, never or global")


def scope_names(values: tuple[str, ...], option: str) -> list[str]:
    """--scope NAME, repeated or space-separated, each an RFC 6749 §3.3 scope token."""
    names = list(dict.fromkeys(name for value in values for name in value.split()))
    bad = [name for name in names if not is_scope_token(name)]
    if bad:
        raise click.UsageError(
            f"Invalid value for '{option}': {bad[0]!r} is not a valid scope token (RFC 6749 §3.3)"
        )
    return names


def registration_options(command: F) -> F:
    """The options create and update share: each sets one field of the representation."""
    options = [
        click.option(
            "--name", "client_name", help="The name people see on the sign-in and approval pages."
        ),
        click.option("--client-version", help="A version shown beside the name, such as 2.1."),
        click.option("--description", help="What the client is, shown on the approval page."),
        click.option(
            "--logo-uri", metavar="URL", help="An https URL of the logo the approval page shows."
        ),
        click.option(
            "--type",
            "client_type",
            type=click.Choice(list(AUTH_METHODS)),
            help="confidential (has a secret: client_secret_basic or _post) or public (none).",
        ),
        click.option(
            "--redirect-uri",
            "redirect_uris",
            multiple=True,
            metavar="URI",
            help="Where the browser returns with a code or token; once per URI (replaces all).",
        ),
        click.option(
            "--post-logout-redirect-uri",
            "post_logout_redirect_uris",
            multiple=True,
            metavar="URI",
            help="Where the browser may go after signing out (RP-Initiated Logout); once per URI.",
        ),
        click.option(
            "--backchannel-logout-uri",
            metavar="URI",
            help="Where logout tokens are posted (OpenID Connect Back-Channel Logout).",
        ),
        click.option(
            "--grant",
            "grants",
            multiple=True,
            type=click.Choice(GRANTS),
            help="A grant the client may use (RFC 7591 grant_types), once per grant; replaces all",
        ),
        click.option(
            "--scope",
            "scopes",
            multiple=True,
            metavar="NAME",
            help="A scope the client may ask for; repeat, or separate with spaces (replaces all).",
        ),
        click.option(
            "--default-scope",
            "default_scopes",
            multiple=True,
            metavar="NAME",
            help="Granted when a request names no scope (RFC 6749 §3.3); among --scope.",
        ),
        click.option(
            "--refresh-count",
            type=click.IntRange(min=0),
            metavar="N",
            help="How many times a token chain may be refreshed; 0: no refresh token.",
        ),
        click.option(
            "--access-token-lifetime",
            metavar="SECONDS|never|global",
            callback=lifetime,
            help="Seconds an access token lives; never; or global (TESSERA_ACCESS_TOKEN_LIFETIME).",
        ),
        click.option(
            "--token-format",
            type=click.Choice(["opaque", "jwt", GLOBAL]),
            help="Opaque or JWT (RFC 9068) access tokens; global: TESSERA_ACCESS_TOKEN_FORMAT.",
        ),
        click.option(
            "--require-pkce",
            type=click.Choice(["yes", "no", GLOBAL]),
            help="Require PKCE (RFC 7636) of this client; global: TESSERA_REQUIRE_PKCE_PUBLIC.",
        ),
        click.option(
            "--remember-consent/--no-remember-consent",
            default=None,
            help="Skip the approval page for scopes the person approved before.",
        ),
        click.option(
            "--introspect/--no-introspect",
            default=None,
            help="May call the introspection endpoint (RFC 7662), as resource servers do.",
        ),
        click.option(
            "--subject-type",
            type=click.Choice(["public", "pairwise"]),
            help="OpenID Connect subject identifiers: the same for every client, or pairwise.",
        ),
        click.option(
            "--sector-identifier",
            metavar="HOST",
            help="The host a pairwise client's subject identifiers are computed for.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


# The options that set the API's field of the same name, as given.
PLAIN_FIELDS = (
    "client_name",
    "client_version",
    "description",
    "logo_uri",
    "backchannel_logout_uri",
    "refresh_count",
    "require_pkce",
    "remember_consent",
    "introspect",
    "subject_type",
    "sector_identifier",
)


def registration_body(given: dict[str, Any]) -> dict[str, Any]:
    """The representation's fields the options set; those not given are left out."""
    body: dict[str, Any] = {}
    for name in PLAIN_FIELDS:
        if given.get(name) is not None:
            body[name] = given[name]
    if given.get("client_type"):
        body["token_endpoint_auth_method"] = AUTH_METHODS[given["client_type"]]
    for name in ("redirect_uris", "post_logout_redirect_uris"):
        if given.get(name):
            body[name] = list(dict.fromkeys(given[name]))
    if given.get("grants"):
        body["grant_types"] = list(dict.fromkeys(given["grants"]))
        if given.get("refresh_count") and REFRESH_GRANT not in body["grant_types"]:
            # As in webMethods Integration Server, a refresh count above 0 allows refreshing.
            body["grant_types"].append(REFRESH_GRANT)
    if given.get("scopes"):
        body["scope"] = " ".join(scope_names(given["scopes"], "--scope"))
    if given.get("default_scopes"):
        body["default_scope"] = " ".join(scope_names(given["default_scopes"], "--default-scope"))
    lifetime = given.get("access_token_lifetime")
    if lifetime is not None:
        body["access_token_lifetime"] = None if lifetime == GLOBAL else lifetime
    if given.get("token_format") is not None:
        body["access_token_format"] = (
            None if given["token_format"] == GLOBAL else given["token_format"]
        )
    return body


def show_created(session: Session, created: dict[str, Any]) -> None:
    session.emit(created)
    if "client_secret" in created:
        say_the_secret_is_shown_once()


@click.group()
def client() -> None:
    """Client registrations (RFC 7591 metadata)."""


@client.command()
@registration_options
@click.option(
    "--client-id",
    metavar="ID",
    help="Keep this client id (a client moved from webMethods Integration Server).",
)
@click.option(
    "--client-secret-stdin",
    is_flag=True,
    help="Read the secret to keep from standard input (16 characters or more); default: generated.",
)
@output_option
@pass_session
def create(
    session: Session, /, client_id: str | None, client_secret_stdin: bool, **given: Any
) -> None:
    """Register a client. A confidential client's secret is printed once, never again."""
    body = registration_body(given)
    if "client_name" not in body:
        raise click.UsageError("Missing option '--name'.")
    if "token_endpoint_auth_method" not in body:
        raise click.UsageError("Missing option '--type'.")
    if client_id is not None:
        body["client_id"] = client_id
    if client_secret_stdin:
        if body["token_endpoint_auth_method"] == AUTH_METHODS["public"]:
            raise click.UsageError("a public client has no secret: drop --client-secret-stdin")
        body["client_secret"] = read_stdin_line("client secret")
    with session.api() as api:
        show_created(session, api.post("/clients", body))


@client.command()
@registration_options
@click.option(
    "--clear",
    multiple=True,
    type=click.Choice(CLEARABLE),
    help="Empty this field (once per field).",
)
@click.argument("client_id")
@output_option
@pass_session
def update(session: Session, /, client_id: str, clear: tuple[str, ...], **given: Any) -> None:
    """Change a client's registration: only the fields given (a merge patch, RFC 7396)."""
    body = registration_body(given)
    for name in clear:
        if name in body:
            raise click.UsageError(f"{name} is both given and cleared")
        body[name] = [] if name == "post_logout_redirect_uris" else ""
    if not body:
        raise click.UsageError("nothing to change: give an option to set, or --clear FIELD")
    with session.api() as api:
        session.emit(api.patch(f"/clients/{segment(client_id)}", body))


@client.command("list")
@click.option("--name", help="Only clients of this exact name.")
@click.option("--enabled/--disabled", default=None, help="Only enabled, or only disabled, clients.")
@click.option("--grant", type=click.Choice(GRANTS), help="Only clients allowed this grant.")
@click.option("--scope", metavar="NAME", help="Only clients allowed this scope.")
@output_option
@pass_session
def list_clients(
    session: Session, name: str | None, enabled: bool | None, grant: str | None, scope: str | None
) -> None:
    """List clients (never their secrets)."""
    query = {"client_name": name, "grant_type": grant, "scope": scope}
    params = {key: value for key, value in query.items() if value is not None}
    params |= enabled_filter(enabled)
    with session.api() as api:
        session.emit(api.list_all("/clients", params), COLUMNS)


@client.command()
@click.argument("client_id")
@output_option
@pass_session
def show(session: Session, client_id: str) -> None:
    """A client's registration (never its secret)."""
    with session.api() as api:
        session.emit(api.get(f"/clients/{segment(client_id)}"))


@client.command()
@click.argument("client_id")
@output_option
@pass_session
def enable(session: Session, client_id: str) -> None:
    """Let a disabled client authenticate again; its tokens introspect as active again."""
    set_enabled(session, "client", "/clients", client_id, True)


@client.command()
@click.argument("client_id")
@output_option
@pass_session
def disable(session: Session, client_id: str) -> None:
    """Stop a client: it cannot authenticate, and its tokens introspect as inactive."""
    set_enabled(session, "client", "/clients", client_id, False)


@client.command()
@click.argument("client_id")
@output_option
@pass_session
def delete(session: Session, client_id: str) -> None:
    """Delete a client, revoke its tokens and forget everyone's approval of it."""
    with session.api() as api:
        api.delete(f"/clients/{segment(client_id)}")
    session.emit({"client_id": client_id, "deleted": True}, message=f"client {client_id} deleted")


@client.command("rotate-secret")
@click.argument("client_id")
@click.option(
    "--overlap",
    type=click.IntRange(min=0),
    metavar="SECONDS",
    help="How long the old secret stays valid, 0: not at all (TESSERA_SECRET_ROTATION_OVERLAP).",
)
@click.option(
    "--secret-stdin",
    is_flag=True,
    help="Read the new secret from standard input (16 characters or more); default: generated.",
)
@output_option
@pass_session
def rotate_secret(
    session: Session, client_id: str, overlap: int | None, secret_stdin: bool
) -> None:
    """Give a confidential client a new secret, printed once; the old one lasts --overlap."""
    body: dict[str, Any] = {}
    if overlap is not None:
        body["overlap_seconds"] = overlap
    if secret_stdin:
        body["client_secret"] = read_stdin_line("client secret")
    with session.api() as api:
        show_created(session, api.post(f"/clients/{segment(client_id)}/secret", body))
