"""``tessera user ...``: the people who sign in, their OpenID Connect profile claims
(Core §5.1), and their password, which is never an argument."""

from __future__ import annotations

from typing import Any

import click
import orjson

from shared.admin.api_client import segment
from shared.admin.output import Column
from shared.admin.session import (
    F,
    Refused,
    Session,
    enabled_filter,
    new_password,
    output_option,
    pass_session,
    set_enabled,
)
from shared.domain import user_claims
from shared.domain.domain_errors import Invalid
from shared.domain.user_claims import STANDARD_CLAIMS

COLUMNS = [
    Column("USERNAME", "username"),
    Column("ENABLED", "enabled"),
    Column("LOCKED", "locked"),
    Column("NAME", "claims", lambda claims: str((claims or {}).get("name") or "-")),
    Column("EMAIL", "claims", lambda claims: str((claims or {}).get("email") or "-")),
]

# Core §5.1's text claims and what each holds, an option each (--given-name sets given_name).
TEXT_CLAIMS = {
    "name": "Full name, as it is displayed.",
    "given_name": "Given (first) name(s).",
    "family_name": "Surname(s) or last name(s).",
    "middle_name": "Middle name(s).",
    "nickname": "Casual name.",
    "preferred_username": "Shorthand name the person wishes to be referred to by.",
    "profile": "URL of the person's profile page.",
    "picture": "URL of the person's picture.",
    "website": "URL of the person's web page or blog.",
    "email": "Preferred e-mail address.",
    "gender": "Gender, such as female or male.",
    "birthdate": "Birthday, YYYY-MM-DD (or YYYY, or 0000-MM-DD).",
    "zoneinfo": "Time zone, from the tz database, such as Europe/Paris.",
    "locale": "Locale, a BCP47 language tag such as en-US.",
    "phone_number": "Preferred telephone number, E.164 recommended: +1 (425) 555-1212.",
}
FLAG_CLAIMS = {
    "email_verified": "whether the e-mail address was verified",
    "phone_number_verified": "whether the phone number was verified",
}
# Core §5.1.1: the address claim's members, an option each (--address-street-address).
ADDRESS_MEMBERS = {
    "formatted": "Full mailing address, as it is displayed.",
    "street_address": "Street address (house number, street name, ...).",
    "locality": "City or locality.",
    "region": "State, province, prefecture or region.",
    "postal_code": "Zip or postal code.",
    "country": "Country name.",
}
assert {*TEXT_CLAIMS, *FLAG_CLAIMS, "address"} == set(STANDARD_CLAIMS)
assert set(ADDRESS_MEMBERS) == set(user_claims.ADDRESS_MEMBERS)
# What --clear takes: a claim, or one member of the address.
CLEARABLE = (*STANDARD_CLAIMS, *(f"address.{member}" for member in ADDRESS_MEMBERS))


def _option_name(claim: str) -> str:
    return "--" + claim.replace("_", "-")


def claim_options(command: F) -> F:
    """An option per profile claim, and --address JSON or --address-MEMBER."""
    options = [
        click.option(_option_name(claim), f"claim_{claim}", metavar="TEXT", help=text)
        for claim, text in TEXT_CLAIMS.items()
    ]
    options += [
        click.option(
            f"{_option_name(claim)}/--no-{_option_name(claim)[2:]}",
            f"claim_{claim}",
            default=None,
            help=f"Set {what}.",
        )
        for claim, what in FLAG_CLAIMS.items()
    ]
    options.append(
        click.option(
            "--address",
            "address_json",
            metavar="JSON",
            help='The whole address claim as a JSON object: {"locality": "Paris", ...}.',
        )
    )
    options += [
        click.option(f"--address-{member.replace('_', '-')}", f"address_{member}", help=text)
        for member, text in ADDRESS_MEMBERS.items()
    ]
    for option in reversed(options):
        command = option(command)
    return command


def checked(claims: dict[str, Any], change: bool) -> dict[str, Any]:
    """The claims as the API will check them (``shared.domain.user_claims``), before
    anything is sent: a value it would refuse is refused here, naming the claim."""
    try:
        if change:
            return user_claims.checked_changes(claims)
        return user_claims.checked_claims(claims)
    except Invalid as exc:
        raise Refused(exc.message) from None


def claims_given(given: dict[str, Any]) -> dict[str, Any]:
    """The claims the options set; UsageError for a malformed or doubly given address."""
    claims = {
        name[len("claim_") :]: value
        for name, value in given.items()
        if name.startswith("claim_") and value is not None
    }
    members = {
        name[len("address_") :]: value
        for name, value in given.items()
        if name.startswith("address_") and name != "address_json" and value is not None
    }
    if given.get("address_json") is not None:
        if members:
            raise click.UsageError("give --address JSON or --address-* options, not both")
        try:
            address = orjson.loads(given["address_json"])
        except orjson.JSONDecodeError:
            address = None
        if not isinstance(address, dict):
            raise click.UsageError("Invalid value for '--address': not a JSON object")
        unknown = sorted(set(address) - set(ADDRESS_MEMBERS))
        if unknown:
            raise click.UsageError(
                f"Invalid value for '--address': {unknown[0]!r} is not an address member "
                f"({', '.join(ADDRESS_MEMBERS)})"
            )
        claims["address"] = address
    elif members:
        claims["address"] = members
    return claims


@click.group()
def user() -> None:
    """The people who sign in: accounts, profile claims, passwords and sign-in limits."""


@user.command()
@click.argument("username")
@claim_options
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (else asked)."
)
@click.option("--disabled", is_flag=True, help="Create the account disabled: it cannot sign in.")
@output_option
@pass_session
def add(
    session: Session, /, username: str, password_stdin: bool, disabled: bool, **given: Any
) -> None:
    """Add a person who signs in with USERNAME and a password."""
    body: dict[str, Any] = {"username": username}
    claims = claims_given(given)
    if claims:
        body["claims"] = checked(claims, change=False)
    if disabled:
        body["enabled"] = False
    body["password"] = new_password(password_stdin)
    with session.api() as api:
        created = api.post("/users", body)
    session.emit(created, message=f"user {username} added")


@user.command()
@click.argument("username")
@claim_options
@click.option(
    "--clear",
    multiple=True,
    type=click.Choice(CLEARABLE),
    help="Remove this claim, or one member of the address (address.locality); once each.",
)
@output_option
@pass_session
def update(session: Session, /, username: str, clear: tuple[str, ...], **given: Any) -> None:
    """Change a person's profile claims: those given, the others kept (the address's
    members too: a merge patch, RFC 7396)."""
    claims: dict[str, Any] = claims_given(given)
    for name in clear:
        claim, _, member = name.partition(".")
        address = claims.get("address")
        if (not member and claim in claims) or (member and address is None and claim in claims):
            raise click.UsageError(f"the claim {name} is both set and cleared")
        if not member:
            claims[claim] = None  # RFC 7396: null removes the member
        elif (address or {}).get(member) is not None:
            raise click.UsageError(f"the claim {name} is both set and cleared")
        else:
            claims["address"] = {**(address or {}), member: None}
    if not claims:
        raise click.UsageError("nothing to change: give a claim to set, or --clear CLAIM")
    body = {"claims": checked(claims, change=True)}
    with session.api() as api:
        session.emit(api.patch(f"/users/{segment(username)}", body))


@user.command("list")
@click.option("--enabled/--disabled", default=None, help="Only enabled, or only disabled, people.")
@output_option
@pass_session
def list_users(session: Session, enabled: bool | None) -> None:
    """List the people who sign in (never their passwords)."""
    params = enabled_filter(enabled)
    with session.api() as api:
        session.emit(api.list_all("/users", params), COLUMNS)


@user.command()
@click.argument("username")
@output_option
@pass_session
def show(session: Session, username: str) -> None:
    """A person's account and profile claims."""
    with session.api() as api:
        session.emit(api.get(f"/users/{segment(username)}"))


@user.command()
@click.argument("username")
@output_option
@pass_session
def enable(session: Session, username: str) -> None:
    """Let a disabled person sign in again."""
    set_enabled(session, "user", "/users", username, True)


@user.command()
@click.argument("username")
@output_option
@pass_session
def disable(session: Session, username: str) -> None:
    """Stop a person signing in, and revoke their tokens."""
    set_enabled(session, "user", "/users", username, False)


@user.command()
@click.argument("username")
@output_option
@pass_session
def delete(session: Session, username: str) -> None:
    """Delete a person, their approvals, and revoke their tokens."""
    with session.api() as api:
        api.delete(f"/users/{segment(username)}")
    session.emit({"username": username, "deleted": True}, message=f"user {username} deleted")


@user.command("set-password")
@click.argument("username")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (else asked)."
)
@output_option
@pass_session
def set_password(session: Session, username: str, password_stdin: bool) -> None:
    """Give a person a new password."""
    password = new_password(password_stdin)
    with session.api() as api:
        api.put(f"/users/{segment(username)}/password", {"password": password})
    session.emit(
        {"username": username, "password_set": True}, message=f"password of {username} set"
    )


@user.command()
@click.argument("username")
@output_option
@pass_session
def unlock(session: Session, username: str) -> None:
    """Clear a username's sign-in limits (its failures from every address)."""
    with session.api() as api:
        api.post(f"/users/{segment(username)}/unlock")
    session.emit(
        {"username": username, "unlocked": True},
        message=f"sign-in limits of {username} cleared",
    )
