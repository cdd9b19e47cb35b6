"""``tessera apply -f FILE|DIR [--prune] [--dry-run]``: make Tessera's scopes, clients and
users what YAML documents declare, through the admin API, and print what changed.

Every document is read and checked, and every secret a creation needs is read, before
the first request that changes anything: bad input changes nothing. A refusal of the API
midway stops there; what was made before it stays, and applying again, once fixed,
carries on where it stopped (an apply that finds nothing to change makes no request).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from shared.admin.api_client import AdminAPI, ApiError, segment
from shared.admin.apply_documents import BadDocument, Desired, load
from shared.admin.apply_plan import Change, Current, describe, plan, summary
from shared.admin.session import Refused, Session, output_option, pass_session

# Where each kind lives in the API, and the field that names one.
PATHS = {"scope": "/scopes", "client": "/clients", "user": "/users"}
KEYS = {"scope": "name", "client": "client_id", "user": "username"}


def read_current(api: AdminAPI, desired: Desired, prune: bool) -> Current:
    """What the API holds. Users are read only when the files speak of them."""
    speaks_of_users = bool(desired.users) or (prune and "users" in desired.managed)

    def by_name(kind: str) -> dict[str, dict[str, Any]]:
        return {item[KEYS[kind]]: item for item in api.list_all(PATHS[kind])}

    return Current(
        scopes=by_name("scope"),
        clients=by_name("client"),
        users=by_name("user") if speaks_of_users else {},
    )


def make(api: AdminAPI, change: Change) -> None:
    collection = PATHS[change.kind]
    if change.action == "create":
        api.post(collection, change.body)
    elif change.action == "update":
        api.patch(f"{collection}/{segment(change.name)}", change.body)
    else:
        api.delete(f"{collection}/{segment(change.name)}")


@click.command()
@click.option(
    "-f",
    "--filename",
    "paths",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="A YAML file, or a directory of *.yaml and *.yml files; once per file or directory.",
)
@click.option(
    "--prune",
    is_flag=True,
    help="Also delete what the files no longer name, among the names a Managed document claims.",
)
@click.option("--dry-run", is_flag=True, help="Print the changes, and make none.")
@output_option
@pass_session
def apply(session: Session, paths: tuple[Path, ...], prune: bool, dry_run: bool) -> None:
    """Create and update the scopes, clients and users the files declare (only the fields
    that differ), and with --prune delete the managed ones they no longer name.

    Secrets come from files or the environment ({fromFile: PATH}, {fromEnv: VAR}), never
    from the documents themselves. See the README, "Declarative configuration"."""
    try:
        desired = load(paths)
    except BadDocument as exc:
        raise Refused(str(exc)) from None
    if prune and not desired.has_managed:
        raise Refused(
            "--prune deletes only names a kind: Managed document claims, and the files "
            "have none: add one (README, 'Declarative configuration')"
        )
    with session.api() as api:
        try:
            changes = plan(desired, read_current(api, desired, prune), prune)
        except BadDocument as exc:
            raise Refused(str(exc)) from None
        people = session.output == "table"
        if dry_run:
            if people:
                click.echo("".join(describe(change) for change in changes), nl=False)
                click.echo(f"{summary(changes, done=False)} Dry run: nothing was changed.")
            else:
                session.emit({"dry_run": True, "changes": [c.view() for c in changes]})
            return
        for made, change in enumerate(changes):
            try:
                make(api, change)
            except ApiError as exc:
                raise Refused(
                    f"{change.action} {change.kind} {change.name}: {exc} "
                    f"({made} change(s) made before it)"
                ) from None
            if people:
                click.echo(describe(change), nl=False)
    if people:
        click.echo(summary(changes, done=True))
    else:
        session.emit({"dry_run": False, "changes": [c.view() for c in changes]})
