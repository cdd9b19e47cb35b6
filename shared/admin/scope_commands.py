"""``tessera scope ...``: scope definitions (RFC 6749 §3.3) and the resources each covers
(webMethods Integration Server's folders and services of a scope)."""

from __future__ import annotations

import click
from tessera_resource_server.scope_resources import parse_resource

from shared.admin.api_client import segment
from shared.admin.output import Column
from shared.admin.session import Session, output_option, pass_session
from shared.storage.scopes import is_scope_token

COLUMNS = [
    Column("NAME", "name"),
    Column("BUILT_IN", "built_in"),
    Column("DESCRIPTION", "description"),
    Column("RESOURCES", "resources", lambda found: ", ".join(found or []) or "-"),
]


def checked_name(name: str) -> str:
    if not is_scope_token(name):
        raise click.UsageError(f"scope name {name!r} is not a valid scope token (RFC 6749 §3.3)")
    return name


def checked_resources(values: tuple[str, ...]) -> list[str]:
    """Each "METHOD /path/{var}", checked by the parser resource servers enforce them with."""
    try:
        return list(dict.fromkeys(str(parse_resource(value)) for value in values))
    except ValueError as exc:
        raise click.UsageError(f"Invalid value for '--resource': {exc}") from None


RESOURCE_HELP = (
    'A resource the scope covers, "METHOD /path/{var}", for resource servers that enforce it; '
    "once per resource."
)


@click.group()
def scope() -> None:
    """Scope definitions and the resources they cover."""


@scope.command()
@click.argument("name")
@click.option("--description", required=True, help="What the approval page says the scope allows.")
@click.option(
    "--resource", "resources", multiple=True, metavar='"METHOD /path"', help=RESOURCE_HELP
)
@output_option
@pass_session
def add(session: Session, name: str, description: str, resources: tuple[str, ...]) -> None:
    """Define a scope."""
    body: dict[str, object] = {"name": checked_name(name), "description": description}
    if resources:
        body["resources"] = checked_resources(resources)
    with session.api() as api:
        created = api.post("/scopes", body)
    session.emit(created, message=f"scope {name} added")


@scope.command()
@click.argument("name")
@click.option("--description", help="What the approval page says the scope allows.")
@click.option(
    "--resource", "resources", multiple=True, metavar='"METHOD /path"', help=RESOURCE_HELP
)
@click.option("--no-resources", is_flag=True, help="Remove every resource of the scope.")
@output_option
@pass_session
def update(
    session: Session,
    name: str,
    description: str | None,
    resources: tuple[str, ...],
    no_resources: bool,
) -> None:
    """Change a scope's description or resources (--resource replaces them all)."""
    body: dict[str, object] = {}
    if description is not None:
        body["description"] = description
    if resources and no_resources:
        raise click.UsageError("--resource and --no-resources contradict each other")
    if resources or no_resources:
        body["resources"] = checked_resources(resources)
    if not body:
        raise click.UsageError(
            "nothing to change: give --description, --resource or --no-resources"
        )
    with session.api() as api:
        session.emit(api.patch(f"/scopes/{segment(name)}", body))


@scope.command("list")
@output_option
@pass_session
def list_scopes(session: Session) -> None:
    """List scopes, the built-in OpenID Connect ones among them."""
    with session.api() as api:
        session.emit(api.list_all("/scopes"), COLUMNS)


@scope.command()
@click.argument("name")
@output_option
@pass_session
def show(session: Session, name: str) -> None:
    """A scope, its resources and the clients registered for it."""
    with session.api() as api:
        session.emit(api.get(f"/scopes/{segment(name)}"))


@scope.command()
@click.argument("name")
@output_option
@pass_session
def delete(session: Session, name: str) -> None:
    """Delete a scope no client is registered for (as webMethods Integration Server does)."""
    with session.api() as api:
        api.delete(f"/scopes/{segment(name)}")
    session.emit({"name": name, "deleted": True}, message=f"scope {name} deleted")
