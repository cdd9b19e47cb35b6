"""``tessera``: the administrator's command line (scopes, users, clients).

It talks to the Redis named by ``REDIS_URL``. Bad input is refused with a message on
stderr and exit status 1, before anything is written.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared import clients, scopes, users
from shared.clients import CLIENT_TYPES, GRANT_TYPES, REQUIRE_PKCE_CHOICES
from shared.redis_store import connect
from shared.settings import redis_url_from_env

Command = Callable[[Redis, argparse.Namespace], Awaitable[None]]


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


async def scope_add(redis: Redis, args: argparse.Namespace) -> None:
    scope = await scopes.add(redis, args.name, args.description)
    print(f"scope {scope.name} added")


async def user_add(redis: Redis, args: argparse.Namespace) -> None:
    if not args.password_stdin:
        raise ValueError("give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    user = await users.add(redis, args.username, password)
    print(f"user {user.username} added")


async def client_create(redis: Redis, args: argparse.Namespace) -> None:
    client, secret = await clients.create(
        redis,
        name=args.name,
        client_type=args.type,
        redirect_uris=args.redirect_uri,
        grants=args.grant,
        scope_names=args.scope,
        version=args.version,
        description=args.description,
        introspect=args.introspect,
        refresh_count=args.refresh_count,
        require_pkce=args.require_pkce,
    )
    _print_client(client, args.json, secret)


async def client_list(redis: Redis, args: argparse.Namespace) -> None:
    found = await clients.list_all(redis)
    if args.json:
        _print_json([c.public_view() for c in found])
        return
    for c in found:
        state = "enabled" if c.enabled else "disabled"
        print(f"{c.client_id}  {c.type:12} {state:8}  {c.display_name}")


async def _existing(redis: Redis, client_id: str) -> clients.Client:
    client = await clients.get(redis, client_id)
    if client is None:
        raise ValueError(f"no client {client_id!r}")
    return client


async def client_show(redis: Redis, args: argparse.Namespace) -> None:
    _print_client(await _existing(redis, args.client_id), args.json)


async def client_disable(redis: Redis, args: argparse.Namespace) -> None:
    await clients.set_enabled(redis, args.client_id, False)
    print(f"client {args.client_id} disabled")


async def client_enable(redis: Redis, args: argparse.Namespace) -> None:
    await clients.set_enabled(redis, args.client_id, True)
    print(f"client {args.client_id} enabled")


async def client_delete(redis: Redis, args: argparse.Namespace) -> None:
    await clients.delete(redis, args.client_id)
    print(f"client {args.client_id} deleted")


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
    add.set_defaults(run=scope_add)

    user = nouns.add_parser("user", help="resource owners").add_subparsers(
        dest="verb", required=True
    )
    add = user.add_parser("add", help="add a user")
    add.add_argument("username")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(run=user_add)

    client = nouns.add_parser("client", help="client registrations").add_subparsers(
        dest="verb", required=True
    )
    create = client.add_parser("create", help="register a client")
    create.add_argument("--name", required=True)
    create.add_argument("--version", default="")
    create.add_argument("--description", default="")
    create.add_argument("--type", required=True, choices=CLIENT_TYPES)
    create.add_argument("--redirect-uri", action="append", default=[], metavar="URI")
    create.add_argument("--grant", action="append", default=[], choices=GRANT_TYPES)
    create.add_argument("--scope", action="append", default=[])
    create.add_argument(
        "--introspect", action="store_true", help="may call the introspection endpoint"
    )
    create.add_argument("--refresh-count", type=int, default=0, metavar="N")
    create.add_argument("--require-pkce", default="global", choices=REQUIRE_PKCE_CHOICES)
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
    return parser


async def _run(command: Command, args: argparse.Namespace) -> None:
    redis = connect(redis_url_from_env())
    try:
        await command(redis, args)
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        asyncio.run(_run(args.run, args))
    except ValueError as exc:
        print(f"tessera: error: {exc}", file=sys.stderr)
        return 1
    except (RedisError, OSError) as exc:
        print(f"tessera: error: cannot reach Redis at REDIS_URL: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
