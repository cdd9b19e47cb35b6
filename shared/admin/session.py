"""What every command of ``tessera`` shares: the admin API's address and credential (the
global options), the output format, and reading a secret without it ever being an
argument (an argument shows in the process list and the shell's history)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from shared.admin.api_client import AdminAPI, segment
from shared.admin.output import FORMATS, Column, render

SERVER_ENV = "TESSERA_ADMIN_URL"
CREDENTIAL_ENV = "TESSERA_ADMIN_TOKEN"

F = TypeVar("F", bound=Callable[..., Any])


class Refused(click.ClickException):
    """Bad input found before any request: nothing was sent, nothing changed."""


@dataclass
class Session:
    server: str | None
    token_file: Path | None
    output: str = "table"

    def credential(self) -> str:
        """The bearer credential: --token-file's content, else TESSERA_ADMIN_TOKEN."""
        if self.token_file is not None:
            try:
                value = self.token_file.read_text().strip()
            except OSError as exc:
                raise Refused(
                    f"cannot read --token-file {self.token_file}: {exc.strerror}"
                ) from None
            if not value:
                raise Refused(f"--token-file {self.token_file} is empty")
            return value
        value = os.environ.get(CREDENTIAL_ENV, "")
        if not value.strip():
            raise Refused(
                f"no admin credential: set {CREDENTIAL_ENV} or give --token-file PATH "
                "(the bootstrap credential, or an access token with the tessera:admin scope)"
            )
        return value.strip()

    @contextmanager
    def api(self) -> Iterator[AdminAPI]:
        if not self.server:
            raise Refused(f"no admin API: give --server URL or set {SERVER_ENV}")
        try:
            client = AdminAPI(self.server, self.credential())
        except ValueError as exc:  # a malformed --server
            raise Refused(str(exc)) from None
        with client as api:
            yield api

    def emit(
        self,
        data: object,
        columns: Sequence[Column] | None = None,
        message: str | None = None,
    ) -> None:
        click.echo(render(data, self.output, columns, message), nl=False)


pass_session = click.make_pass_decorator(Session)


def enabled_filter(enabled: bool | None) -> dict[str, str]:
    """The ``enabled`` query parameter of a listing: none when either will do."""
    return {} if enabled is None else {"enabled": "true" if enabled else "false"}


def set_enabled(session: Session, kind: str, collection: str, name: str, enabled: bool) -> None:
    """Enable or disable the ``kind`` (a client, a user) named ``name`` in ``collection``
    (``/clients``, ``/users``), and say so."""
    with session.api() as api:
        updated = api.patch(f"{collection}/{segment(name)}", {"enabled": enabled})
    session.emit(updated, message=f"{kind} {name} {'enabled' if enabled else 'disabled'}")


def output_option(command: F) -> F:
    """``-o/--output`` on a command as well as before it: ``tessera client list -o json``."""

    def remember(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value is not None:
            ctx.find_object(Session).output = value  # type: ignore[union-attr]

    return click.option(
        "-o",
        "--output",
        type=click.Choice(FORMATS),
        expose_value=False,
        callback=remember,
        help="Print json, yaml or a table (default: as given before the command, else table).",
    )(command)


def say_the_secret_is_shown_once() -> None:
    """On stderr, so that ``-o json`` stays JSON: a secret printed is never shown again."""
    click.echo("Store the client_secret now: it is not shown again.", err=True)


def read_stdin_line(what: str) -> str:
    """One line of standard input, without its line ending; refused when empty."""
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise Refused(f"no {what} on standard input")
    return line


def new_password(from_stdin: bool) -> str:
    """A password from standard input (--password-stdin), else asked for twice on the
    terminal, never shown."""
    if from_stdin:
        return read_stdin_line("password")
    if not sys.stdin.isatty():
        raise click.UsageError(
            "give --password-stdin to read the password from standard input "
            "(there is no terminal to ask on)"
        )
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password
