"""``tessera``: the administrator's command line. It talks to the admin API (``--server``,
``TESSERA_ADMIN_URL``) with a bearer credential (``TESSERA_ADMIN_TOKEN`` or
``--token-file``); only ``bootstrap`` and ``log fingerprint`` reach Redis themselves.

Every refusal is answered here, in one place, as one line on stderr, ``tessera: error:
...``, with exit status 1 (the API or Redis refused, or a check found bad input before
anything was sent) or 2 (the command line itself is wrong); nothing is changed then.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click
from redis.exceptions import RedisError

from shared.admin import (
    apply_command,
    client_commands,
    grant_commands,
    local_commands,
    scope_commands,
    user_commands,
)
from shared.admin.api_client import ApiError, Unreachable
from shared.admin.output import FORMATS
from shared.admin.session import CREDENTIAL_ENV, SERVER_ENV, Session
from shared.domain.domain_errors import DomainError

PROGRAM = "tessera"
# Click's completion scripts (`_TESSERA_COMPLETE=bash_source tessera`): README.
COMPLETE_VAR = "_TESSERA_COMPLETE"


def _refused(message: str, status: int) -> int:
    click.echo(f"{PROGRAM}: error: {message}", err=True)
    return status


def _usage_line(error: click.UsageError) -> str:
    """Click's usage error on one line, with where to read more."""
    where = error.ctx.command_path if error.ctx is not None else PROGRAM
    return f"{error.format_message()} (see '{where} --help')"


class Tessera(click.Group):
    """The root group; its ``main`` turns every refusal into one line and a status."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> NoReturn:
        try:
            done = super().main(
                args, prog_name or PROGRAM, complete_var or COMPLETE_VAR, False, **extra
            )
            status = done if isinstance(done, int) else 0  # --help and --version: 0
        except click.UsageError as exc:
            status = _refused(_usage_line(exc), exc.exit_code)
        except click.ClickException as exc:
            status = _refused(exc.format_message(), exc.exit_code)
        except click.Abort:
            status = _refused("aborted", 1)
        except ApiError as exc:
            status = _refused(str(exc), 1)
        except Unreachable as exc:
            status = _refused(str(exc), 1)
        except DomainError as exc:  # bootstrap's checks (shared.domain.domain_errors)
            status = _refused(exc.message, 1)
        except RedisError as exc:
            status = _refused(f"cannot reach Redis at REDIS_URL: {exc}", 1)
        except ValueError as exc:  # a malformed REDIS_URL (SettingsError)
            status = _refused(str(exc), 1)
        except OSError as exc:  # Redis refusing the connection, a closed pipe
            status = _refused(f"cannot reach Redis at REDIS_URL: {exc}", 1)
        sys.exit(status)


@click.group(
    cls=Tessera,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--server",
    envvar=SERVER_ENV,
    show_envvar=True,
    metavar="URL",
    help="The admin API, such as http://tessera-token:9443 (the token service's admin port).",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Read the bearer credential from this file instead of {CREDENTIAL_ENV}.",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Print json, yaml, or a table for people.",
)
@click.version_option(package_name="tessera", prog_name=PROGRAM, message="%(prog)s %(version)s")
@click.pass_context
def tessera(ctx: click.Context, server: str | None, token_file: Path | None, output: str) -> None:
    """Administer Tessera through its admin API.

    The credential is TESSERA_ADMIN_TOKEN (or --token-file): the API's bootstrap
    credential, or an access token carrying the tessera:admin scope."""
    ctx.obj = Session(server, token_file, output)


for group in (
    client_commands.client,
    scope_commands.scope,
    user_commands.user,
    grant_commands.approval,
    grant_commands.token,
    grant_commands.audit,
    local_commands.bootstrap,
    local_commands.log,
):
    tessera.add_command(group)
tessera.add_command(apply_command.apply)


def main() -> NoReturn:
    """The console script ``tessera``."""
    tessera.main()
