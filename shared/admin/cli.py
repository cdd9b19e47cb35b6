"""``tessera``: the administrator's command line (scopes, users, clients, tokens, and the
fingerprint a value has in the logs).

It talks to the Redis named by ``REDIS_URL``. Bad input is refused with a message on
stderr and exit status 1, before anything is written: every refusal of the operations
(``shared.domain.domain_errors``) is answered so in one place, ``main``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from redis.exceptions import RedisError

from shared.config.settings import password_hashing_from_env, redis_url_from_env
from shared.domain import user_claims
from shared.domain.domain_errors import DomainError, Invalid, NotFound
from shared.security import fingerprint
from shared.storage import clients, log_fingerprint_key, management, scopes, users
from shared.storage.clients import CLIENT_TYPES, GRANT_TYPES, NEVER_EXPIRES, REQUIRE_PKCE_CHOICES
from shared.storage.redis_store import RedisClient, connect
from shared.web import login_throttle

Command = Callable[[RedisClient, argparse.Namespace], Awaitable[None]]


def _print_json(data: object) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def _print_client(client: clients.Client, as_json: bool, secret: str | None = None) -> None:
    view = client.public_view()
    if secret is not None:
        view["client_secret"] = secret
    if as_json:
        _print_json(view)
        return
    for name, value in view.items():
        shown = " ".join(value) if isinstance(value, list) else value
        print(f"{name:14} {shown}")
    if secret is not None:
        print("\nStore the client_secret now: it is not shown again.")


async def scope_add(redis: RedisClient, args: argparse.Namespace) -> None:
    scope = await scopes.add(redis, args.name, args.description, args.resource)
    print(f"scope {scope.name} added")


async def scope_list(redis: RedisClient, args: argparse.Namespace) -> None:
    found = await scopes.list_all(redis)
    if args.json:
        _print_json([scope.view() for scope in found])
        return
    for scope in found:
        print(f"{scope.name:24} {scope.description}")
        for resource in scope.resources:
            print(f"{'':24}   {resource}")


async def scope_show(redis: RedisClient, args: argparse.Namespace) -> None:
    found = await management.show_scope(redis, args.name)
    if args.json:
        _print_json(found.view())
        return
    print(f"name         {found.scope.name}\ndescription  {found.scope.description}")
    for resource in found.scope.resources:
        print(f"resource     {resource}")
    print(f"clients      {' '.join(found.client_ids)}")


async def scope_delete(redis: RedisClient, args: argparse.Namespace) -> None:
    await management.delete_scope(redis, args.name)
    print(f"scope {args.name} deleted")


# The profile claims' options (OpenID Connect Core §5.1): option, claim.
CLAIM_OPTIONS = (
    ("--name", "name"),
    ("--given-name", "given_name"),
    ("--family-name", "family_name"),
    ("--middle-name", "middle_name"),
    ("--nickname", "nickname"),
    ("--preferred-username", "preferred_username"),
    ("--gender", "gender"),
    ("--birthdate", "birthdate"),
    ("--email", "email"),
    ("--phone", "phone_number"),
    ("--locale", "locale"),
    ("--zoneinfo", "zoneinfo"),
    ("--picture", "picture"),
    ("--website", "website"),
    ("--profile", "profile"),
)
# --email-verified / --no-email-verified and the like.
BOOLEAN_CLAIM_OPTIONS = (
    ("--email-verified", "email_verified"),
    ("--phone-verified", "phone_number_verified"),
)
# Core §5.1.1: the address's members.
ADDRESS_OPTIONS = (
    ("--address-formatted", "formatted"),
    ("--address-street", "street_address"),
    ("--address-locality", "locality"),
    ("--address-region", "region"),
    ("--address-postal-code", "postal_code"),
    ("--address-country", "country"),
)
# What --clear takes: a claim, or one member of the address.
CLEARABLE = (
    *user_claims.STANDARD_CLAIMS,
    *(f"address.{member}" for member in user_claims.ADDRESS_MEMBERS),
)


def _claims_given(args: argparse.Namespace) -> dict[str, Any]:
    """The claims the options set; the address as the object of its members given."""
    given: dict[str, Any] = {}
    for _, claim in (*CLAIM_OPTIONS, *BOOLEAN_CLAIM_OPTIONS):
        value = getattr(args, f"claim_{claim}")
        if value is not None:
            given[claim] = value
    address = {
        member: getattr(args, f"address_{member}")
        for _, member in ADDRESS_OPTIONS
        if getattr(args, f"address_{member}") is not None
    }
    if address:
        given["address"] = address
    return given


def _claim_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``user update`` as a merge patch of the claims (RFC 7396):
    ``--clear`` gives None, to a claim or to an address member."""
    changes = _claims_given(args)
    for name in args.clear:
        claim, _, member = name.partition(".")
        if not member:
            if claim in changes:
                raise Invalid(f"claim {claim!r} is both set and cleared")
            changes[claim] = None
            continue
        address = changes.setdefault("address", {})
        if address is None or address.get(member) is not None:
            raise Invalid(f"claim {name!r} is both set and cleared")
        address[member] = None
    if not changes:
        raise Invalid("give a claim to set or --clear")
    return changes


def _print_user(user: users.User, as_json: bool) -> None:
    view = user.public_view()
    if as_json:
        _print_json(view)
        return
    shown: list[tuple[str, object]] = [
        ("username", user.username),
        ("sub", user.sub),
        ("created_at", _when(user.created_at)),
        ("updated_at", _when(user.updated_at) if user.updated_at else "-"),
    ]
    for name, value in user.claims.items():
        if isinstance(value, dict):
            shown += [(f"{name}.{member}", text) for member, text in value.items()]
        else:
            shown.append((name, value))
    for name, value in shown:
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        # A multi-line address member stays on its line.
        print(f"{name:22} {text.replace(chr(13), '').replace(chr(10), ' / ')}")


async def user_add(redis: RedisClient, args: argparse.Namespace) -> None:
    if not args.password_stdin:
        raise Invalid("give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    user = await users.add(
        redis, args.username, password, password_hashing_from_env(), claims=_claims_given(args)
    )
    print(f"user {user.username} added")


async def user_update(redis: RedisClient, args: argparse.Namespace) -> None:
    _print_user(await users.update_claims(redis, args.username, _claim_changes(args)), args.json)


async def user_show(redis: RedisClient, args: argparse.Namespace) -> None:
    _print_user(await users.existing(redis, args.username), args.json)


async def user_unlock(redis: RedisClient, args: argparse.Namespace) -> None:
    # A name nobody has is limited like any other, so its limits are cleared all the same.
    await login_throttle.unlock(redis, args.username)
    note = "" if await users.get(redis, args.username) else " (no user has that name)"
    print(f"sign-in limits of {args.username} cleared{note}")


async def client_create(redis: RedisClient, args: argparse.Namespace) -> None:
    client, secret = await clients.create(
        redis,
        name=args.name,
        client_type=args.type,
        redirect_uris=args.redirect_uri,
        grants=args.grant,
        scope_names=args.scope,
        version=args.version,
        description=args.description,
        logo_uri=args.logo_uri,
        remember_consent=args.remember_consent == "yes",
        introspect=args.introspect,
        refresh_count=args.refresh_count,
        require_pkce=args.require_pkce,
        default_scopes=args.default_scope,
        access_token_lifetime=args.access_token_lifetime,
        jwt_access_tokens=TOKEN_FORMATS[args.token_format],
        subject_type=args.subject_type,
        sector_identifier=args.sector_identifier,
        post_logout_redirect_uris=args.post_logout_redirect_uri,
        backchannel_logout_uri=args.backchannel_logout_uri,
    )
    _print_client(client, args.json, secret)


async def client_list(redis: RedisClient, args: argparse.Namespace) -> None:
    found = await clients.list_all(redis)
    if args.json:
        _print_json([c.public_view() for c in found])
        return
    for c in found:
        state = "enabled" if c.enabled else "disabled"
        print(f"{c.client_id}  {c.type:12} {state:8}  {c.display_name}")


async def client_show(redis: RedisClient, args: argparse.Namespace) -> None:
    _print_client(await clients.existing(redis, args.client_id), args.json)


async def client_disable(redis: RedisClient, args: argparse.Namespace) -> None:
    await clients.set_enabled(redis, args.client_id, False)
    print(f"client {args.client_id} disabled")


async def client_enable(redis: RedisClient, args: argparse.Namespace) -> None:
    await clients.set_enabled(redis, args.client_id, True)
    print(f"client {args.client_id} enabled")


async def client_delete(redis: RedisClient, args: argparse.Namespace) -> None:
    revoked = await management.delete_client(redis, args.client_id)
    print(f"client {args.client_id} deleted; {revoked} grant(s) revoked")


def _when(timestamp: int | None) -> str:
    if timestamp is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(timestamp))


async def token_list(redis: RedisClient, args: argparse.Namespace) -> None:
    found = await management.list_tokens(redis, client_id=args.client, username=args.user)
    if args.json:
        _print_json(found)
        return
    print(f"{'kind':14} {'client':32} {'user':16} {'issued':20} {'expires':20} scope")
    for t in found:
        print(
            f"{t.kind:14} {t.client_id:32} {t.username or '-':16} "
            f"{_when(t.issued_at):20} {_when(t.expires_at):20} {' '.join(t.scope)}"
        )


async def token_revoke(redis: RedisClient, args: argparse.Namespace) -> None:
    if args.token_stdin:
        token = sys.stdin.readline().strip()
        if not await management.revoke_token(redis, token):
            # The message does not quote the value: it is a credential.
            raise NotFound("token", token, "no live access or refresh token has that value")
        print("token revoked, with every token of its grant")
    elif args.client is not None:
        count = await management.revoke_client_tokens(redis, args.client)
        print(f"{count} grant(s) of client {args.client} revoked")
    else:
        count = await management.revoke_user_tokens(redis, args.user)
        print(f"{count} grant(s) of user {args.user} revoked")


async def log_fingerprint(redis: RedisClient, args: argparse.Namespace) -> None:
    """What the services log for a value they must not show (shared.security.fingerprint): to find
    where a credential that may have been misplaced was sent."""
    value = sys.stdin.readline().rstrip("\r\n")
    print(fingerprint.with_key(await log_fingerprint_key.shared_key(redis), value))


def _lifetime(value: str) -> int:
    if value == "never":
        return NEVER_EXPIRES
    seconds = int(value)
    if seconds <= 0:
        raise argparse.ArgumentTypeError("a positive number of seconds, or never")
    return seconds


# --token-format: the value stored in Client.jwt_access_tokens.
TOKEN_FORMATS = {"global": None, "opaque": False, "jwt": True}


def _add_claim_options(parser: argparse.ArgumentParser) -> None:
    """The options setting profile claims (OpenID Connect Core §5.1)."""
    claims = parser.add_argument_group(
        "profile claims", "OpenID Connect Core §5.1, released at the UserInfo endpoint"
    )
    for option, claim in CLAIM_OPTIONS:
        claims.add_argument(option, dest=f"claim_{claim}", metavar="TEXT")
    for option, claim in BOOLEAN_CLAIM_OPTIONS:
        claims.add_argument(option, dest=f"claim_{claim}", action=argparse.BooleanOptionalAction)
    for option, member in ADDRESS_OPTIONS:
        claims.add_argument(option, dest=f"address_{member}", metavar="TEXT")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tessera", description="Administer Tessera (uses the Redis at REDIS_URL)."
    )
    nouns = parser.add_subparsers(dest="noun", required=True)

    scope = nouns.add_parser("scope", help="scope definitions").add_subparsers(
        dest="verb", required=True
    )
    add = scope.add_parser("add", help="define a scope")
    add.add_argument("name")
    add.add_argument("--description", required=True)
    add.add_argument(
        "--resource",
        action="append",
        default=[],
        metavar='"METHOD /path"',
        help="a resource the scope covers, for resource servers that enforce it (repeatable)",
    )
    add.set_defaults(run=scope_add)
    listing = scope.add_parser("list", help="list scopes")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=scope_list)
    show = scope.add_parser("show", help="a scope and the clients registered for it")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=scope_show)
    delete = scope.add_parser("delete", help="delete a scope no client is registered for")
    delete.add_argument("name")
    delete.set_defaults(run=scope_delete)

    user = nouns.add_parser("user", help="resource owners").add_subparsers(
        dest="verb", required=True
    )
    add = user.add_parser("add", help="add a user")
    add.add_argument("username")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    _add_claim_options(add)
    add.set_defaults(run=user_add)
    update = user.add_parser("update", help="set or clear a user's profile claims")
    update.add_argument("username")
    _add_claim_options(update)
    update.add_argument(
        "--clear",
        action="append",
        default=[],
        choices=CLEARABLE,
        metavar="CLAIM",
        help="clear a claim, or one member of the address (address.locality); repeatable",
    )
    update.add_argument("--json", action="store_true")
    update.set_defaults(run=user_update)
    show = user.add_parser("show", help="a user and its profile claims (never the password)")
    show.add_argument("username")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=user_show)
    unlock = user.add_parser(
        "unlock", help="clear a username's sign-in limits (its failures from every address)"
    )
    unlock.add_argument("username")
    unlock.set_defaults(run=user_unlock)

    client = nouns.add_parser("client", help="client registrations").add_subparsers(
        dest="verb", required=True
    )
    create = client.add_parser("create", help="register a client")
    create.add_argument("--name", required=True)
    create.add_argument("--version", default="")
    create.add_argument("--description", default="")
    create.add_argument(
        "--logo-uri", default="", metavar="URL", help="https URL of a logo for the approval page"
    )
    create.add_argument(
        "--remember-consent",
        choices=("yes", "no"),
        default="no",
        help="skip the approval page for scopes the person approved before (default: no)",
    )
    create.add_argument("--type", required=True, choices=CLIENT_TYPES)
    create.add_argument("--redirect-uri", action="append", default=[], metavar="URI")
    create.add_argument("--grant", action="append", default=[], choices=GRANT_TYPES)
    create.add_argument("--scope", action="append", default=[])
    create.add_argument(
        "--introspect", action="store_true", help="may call the introspection endpoint"
    )
    create.add_argument("--refresh-count", type=int, default=0, metavar="N")
    create.add_argument("--require-pkce", default="global", choices=REQUIRE_PKCE_CHOICES)
    create.add_argument(
        "--default-scope", action="append", default=[], help="granted when none is requested"
    )
    create.add_argument(
        "--access-token-lifetime",
        type=_lifetime,
        metavar="SECONDS|never",
        help="default: TESSERA_ACCESS_TOKEN_LIFETIME",
    )
    create.add_argument(
        "--token-format",
        choices=TOKEN_FORMATS,
        default="global",
        help="opaque or JWT (RFC 9068) access tokens; default: TESSERA_ACCESS_TOKEN_FORMAT",
    )
    # OpenID Connect: subject identifiers (Core §8), RP-Initiated and Back-Channel Logout.
    create.add_argument("--subject-type", choices=clients.SUBJECT_TYPES, default="public")
    create.add_argument(
        "--sector-identifier",
        default="",
        metavar="HOST",
        help="pairwise: the host whose clients share subs; default: the redirect URIs' one host",
    )
    create.add_argument(
        "--post-logout-redirect-uri",
        action="append",
        default=[],
        metavar="URI",
        help="where /end_session may send the browser back (exact match)",
    )
    create.add_argument(
        "--backchannel-logout-uri",
        default="",
        metavar="URI",
        help="where logout tokens are posted when a person signs out (https)",
    )
    create.add_argument("--json", action="store_true")
    create.set_defaults(run=client_create)
    listing = client.add_parser("list", help="list clients")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=client_list)
    for verb, run in (
        ("show", client_show),
        ("disable", client_disable),
        ("enable", client_enable),
        ("delete", client_delete),
    ):
        sub = client.add_parser(verb, help=f"{verb} a client")
        sub.add_argument("client_id")
        if verb == "show":
            sub.add_argument("--json", action="store_true")
        sub.set_defaults(run=run)

    token = nouns.add_parser("token", help="issued tokens").add_subparsers(
        dest="verb", required=True
    )
    listing = token.add_parser("list", help="live tokens (never their values)")
    listing.add_argument("--client", metavar="ID")
    listing.add_argument("--user", metavar="NAME")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=token_list)
    revoke = token.add_parser("revoke", help="revoke a token's grant, or all of a client or user")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--token-stdin", action="store_true", help="read the token from stdin (not argv)"
    )
    which.add_argument("--client", metavar="ID")
    which.add_argument("--user", metavar="NAME")
    revoke.set_defaults(run=token_revoke)

    log = nouns.add_parser("log", help="the services' logs").add_subparsers(
        dest="verb", required=True
    )
    find = log.add_parser(
        "fingerprint", help="the fingerprint the logs show for a value read from stdin"
    )
    find.set_defaults(run=log_fingerprint)
    return parser


async def _run(command: Command, args: argparse.Namespace) -> None:
    redis = connect(redis_url_from_env())
    try:
        await command(redis, args)
    finally:
        await redis.aclose()


def _refused(message: str) -> int:
    print(f"tessera: error: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        asyncio.run(_run(args.run, args))
    except DomainError as exc:
        return _refused(exc.message)
    except ValueError as exc:  # a malformed REDIS_URL or TESSERA_PASSWORD_HASH_* (SettingsError)
        return _refused(str(exc))
    except (RedisError, OSError) as exc:
        return _refused(f"cannot reach Redis at REDIS_URL: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
