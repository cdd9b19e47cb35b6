"""A person's profile claims (OpenID Connect Core §5.1): what each may hold, and which of
them are released to a client. No I/O but one read of the system's time zone database.

The claims are set by an administrator (``tessera user``, the admin API) and released at
the UserInfo endpoint and in ID tokens, so each is checked here, once, before it is
stored: its JSON type (§5.1: strings, two booleans, the address an object of strings),
a length bound, and for those with a syntax, a plain check of it. The checks are meant to
catch mistakes, not to prove an address deliverable:

- ``email``: one ``@`` between a local part (at most 64 characters, RFC 5321 §4.5.3.1.1)
  and a domain of dot-separated labels; no spaces. Whether the person receives mail
  there is ``email_verified``'s to say.
- ``phone_number``: E.164 (§5.1 recommends it): ``+``, then 1 to 15 digits, the first
  not 0. Spaces, hyphens, dots and parentheses, as in §5.1's own examples
  ``+1 (425) 555-1212``, are accepted as separators and dropped, so the stored and
  released value is ``+14255551212``; an extension keeps RFC 3966's form ``;ext=5678``.
- ``profile``, ``picture``, ``website``: absolute https URLs with a host and no
  credentials (a browser loads or opens them as given).
- ``locale``: a BCP 47 tag of the usual shape, ``en``, ``en-US``, ``zh-Hant-TW``, with
  hyphens (§5.1 notes that some use ``en_US``; Tessera stores the standard form).
- ``zoneinfo``: a name of the IANA time zone database, such as ``Europe/Paris``.
- ``birthdate``: ``YYYY-MM-DD``, ``0000-MM-DD`` (the year withheld) or ``YYYY`` (§5.1),
  a date that exists.

``updated_at`` is Tessera's own (the time the claims last changed) and ``sub`` the user
record's: neither can be set. A change is a JSON merge patch of the claims (RFC 7396),
applied where the record is stored (``shared.storage.users.update_claims``): a claim given
``None`` is cleared, and ``address`` is changed member by member.
"""

from __future__ import annotations

import datetime
import functools
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from rfc3986_validator import validate_rfc3986  # type: ignore[import-untyped]

from shared.domain.domain_errors import Invalid
from shared.domain.openid import claims_of_scopes

# Core §5.1: the standard claims a profile may hold. sub is not among them: it is the
# user record's own, and updated_at is kept by Tessera (the time the profile changed).
STANDARD_CLAIMS = (
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "email_verified",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "phone_number_verified",
    "address",
)
BOOLEAN_CLAIMS = ("email_verified", "phone_number_verified")
URL_CLAIMS = ("profile", "picture", "website")
# Core §5.1.1: the members of the address claim, all strings.
ADDRESS_MEMBERS = ("formatted", "street_address", "locality", "region", "postal_code", "country")
# The members that may span lines (§5.1.1: "\n" or "\r\n" between them).
MULTILINE_MEMBERS = ("formatted", "street_address")
# Set by Tessera, never by an administrator.
KEPT_BY_TESSERA = ("sub", "updated_at")

MAX_TEXT = 256
MAX_MULTILINE = 1024
MAX_URL = 2048
MAX_EMAIL = 254  # RFC 5321 §4.5.3.1.3's path, less its angle brackets
MAX_EMAIL_LOCAL_PART = 64  # RFC 5321 §4.5.3.1.1
MAX_LOCALE = 35  # RFC 5646 §4.4.1: a tag of up to 35 characters covers every real one
MAX_EXTENSION_DIGITS = 10

# Control characters: never in a claim, but the line breaks of an address's
# multi-line members.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_NEWLINES = re.compile("[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]|\r(?!\n)")
_LOCALE = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*")
_EMAIL_DOMAIN_LABEL = re.compile(r"[^\s@.]+")
_PHONE_SEPARATORS = re.compile(r"[ \-.()]")
_E164 = re.compile(r"\+[1-9][0-9]{0,14}")
_EXTENSION = re.compile(rf";ext=([0-9]{{1,{MAX_EXTENSION_DIGITS}}})")
_BIRTHDATE = re.compile(r"([0-9]{4})(?:-([0-9]{2})-([0-9]{2}))?")


def check(name: str, value: Any) -> Any:
    """``value`` as ``name`` is stored and released (a phone number in its E.164 form,
    the rest as given); Invalid, naming the claim, when it breaks §5.1's rules."""
    check_name(name)
    if name in BOOLEAN_CLAIMS:
        if not isinstance(value, bool):
            raise Invalid(f"claim {name!r} must be true or false")
        return value
    if name == "address":
        return _address(value, clearing=False)
    text = _text(name, value, MAX_URL if name in URL_CLAIMS else MAX_TEXT)
    checker = _SYNTAX.get(name)
    return checker(name, text) if checker else text


def checked_claims(claims: Mapping[str, Any]) -> dict[str, Any]:
    """A new profile's claims, each checked; one given ``None`` is left out."""
    return {name: check(name, value) for name, value in claims.items() if value is not None}


def checked_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """A change of a profile's claims (a JSON merge patch, RFC 7396): each value checked,
    ``None`` for a claim to clear, and for ``address`` an object of the members to set or
    (``None``) clear. Invalid when it changes nothing."""
    if not changes:
        raise Invalid("no claim to change")
    checked: dict[str, Any] = {}
    for name, value in changes.items():
        if value is None:
            check_name(name)
            checked[name] = None
        elif name == "address":
            checked[name] = _address(value, clearing=True)
        else:
            checked[name] = check(name, value)
    return checked


def check_name(name: str) -> None:
    """Invalid unless ``name`` is a claim an administrator may set or clear."""
    if name in KEPT_BY_TESSERA:
        raise Invalid(f"claim {name!r} is kept by Tessera and cannot be set")
    if name not in STANDARD_CLAIMS:
        raise Invalid(
            f"claim {name!r} is not a standard claim (OpenID Connect Core §5.1); "
            f"the claims are {', '.join(STANDARD_CLAIMS)}"
        )


def released(profile: Mapping[str, Any], updated_at: int, names: Iterable[str]) -> dict[str, Any]:
    """The claims among ``names`` the profile holds: only standard claims, and only those
    with a value (Core §5.3.2: a claim without a value is omitted, never null)."""
    found: dict[str, Any] = {}
    for name in names:
        if name == "updated_at":
            if updated_at:
                found[name] = updated_at
        elif name in STANDARD_CLAIMS and profile.get(name) is not None:
            found[name] = profile[name]
    return found


def approved_claims(scope: Iterable[str], asked: Iterable[str] | None = None) -> list[str]:
    """The claims a client may receive for the approved ``scope`` (Core §5.4); with
    ``asked``, the names the ``claims`` parameter gave (§5.5), those among them. A claim
    asked for by name is released only when an approved scope covers it: the approval
    page shows the person scopes, and they approve what they see, never a claim the
    client named out of their sight."""
    covered = claims_of_scopes(list(scope))
    if asked is None:
        return covered
    return [name for name in dict.fromkeys(asked) if name in covered]


# What each claim with a syntax must look like; the others are text.


def _text(name: str, value: Any, limit: int, *, multiline: bool = False) -> str:
    if not isinstance(value, str):
        raise Invalid(f"claim {name!r} must be a string")
    if not value.strip():
        raise Invalid(f"claim {name!r} must not be empty (clear it instead)")
    if len(value) > limit:
        raise Invalid(f"claim {name!r} is longer than {limit} characters")
    if (_CONTROL_BUT_NEWLINES if multiline else _CONTROL).search(value):
        raise Invalid(f"claim {name!r} must not contain control characters")
    return value


def _address(value: Any, *, clearing: bool) -> dict[str, str | None]:
    """§5.1.1's address: an object of string members. ``clearing``: a change, whose
    members may be ``None`` (to clear)."""
    if not isinstance(value, Mapping):
        raise Invalid(f"claim 'address' must be an object of {', '.join(ADDRESS_MEMBERS)}")
    if not value:
        raise Invalid("claim 'address' must have a member (clear it instead)")
    checked: dict[str, str | None] = {}
    for member, text in value.items():
        if member not in ADDRESS_MEMBERS:
            raise Invalid(
                f"claim 'address' has no member {member!r} (OpenID Connect Core §5.1.1); "
                f"its members are {', '.join(ADDRESS_MEMBERS)}"
            )
        if text is None and clearing:
            checked[member] = None
            continue
        multiline = member in MULTILINE_MEMBERS
        limit = MAX_MULTILINE if multiline else MAX_TEXT
        checked[member] = _text(f"address.{member}", text, limit, multiline=multiline)
    return checked


def _email(name: str, value: str) -> str:
    local, at, domain = value.rpartition("@")
    labels = domain.split(".")
    if (
        not at
        or len(value) > MAX_EMAIL
        or not local
        or "@" in local
        or len(local) > MAX_EMAIL_LOCAL_PART
        or any(ch.isspace() for ch in local)
        or len(labels) < 2
        or not all(_EMAIL_DOMAIN_LABEL.fullmatch(label) for label in labels)
    ):
        raise Invalid(f"claim {name!r} {value!r} is not an email address (local@example.com)")
    return value


def _phone_number(name: str, value: str) -> str:
    number, semicolon, extension = value.partition(";")
    digits = _PHONE_SEPARATORS.sub("", number)
    if _E164.fullmatch(digits) is None:
        raise Invalid(
            f"claim {name!r} {value!r} is not an E.164 number: '+', the country code and "
            "up to 15 digits in all (spaces, hyphens, dots and parentheses are dropped)"
        )
    if not semicolon:
        return digits
    if _EXTENSION.fullmatch(semicolon + extension.replace(" ", "")) is None:
        raise Invalid(f"claim {name!r} {value!r}: an extension is written ;ext=1234 (RFC 3966)")
    return f"{digits};{extension.replace(' ', '')}"


def _https_url(name: str, value: str) -> str:
    if any(ch.isspace() for ch in value) or validate_rfc3986(value, rule="URI") is None:
        raise Invalid(f"claim {name!r} {value!r} is not an absolute URL")
    parts = urlsplit(value)
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise Invalid(f"claim {name!r} {value!r} must be an https URL")
    if parts.username is not None or parts.password is not None:
        raise Invalid(f"claim {name!r} {value!r} must not carry a user name or password")
    return value


def _locale(name: str, value: str) -> str:
    if len(value) > MAX_LOCALE or _LOCALE.fullmatch(value) is None:
        hint = f" (write {value.replace('_', '-')!r})" if "_" in value else ""
        raise Invalid(f"claim {name!r} {value!r} is not a BCP 47 language tag such as en-US{hint}")
    return value


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _zoneinfo(name: str, value: str) -> str:
    if value not in _time_zones():
        raise Invalid(f"claim {name!r} {value!r} is not a time zone name such as Europe/Paris")
    return value


def _birthdate(name: str, value: str) -> str:
    found = _BIRTHDATE.fullmatch(value)
    if found is None:
        raise Invalid(f"claim {name!r} {value!r} must be YYYY-MM-DD, 0000-MM-DD or YYYY")
    year, month, day = found.groups()
    if month is None:
        if year == "0000":
            raise Invalid(f"claim {name!r} {value!r}: a year of 0000 says nothing")
        return value
    try:
        # 0000 withholds the year (§5.1): any leap year lets 29 February stand.
        datetime.date(2000 if year == "0000" else int(year), int(month), int(day))
    except ValueError:
        raise Invalid(f"claim {name!r} {value!r} is not a date") from None
    return value


_SYNTAX = {
    "email": _email,
    "phone_number": _phone_number,
    "profile": _https_url,
    "picture": _https_url,
    "website": _https_url,
    "locale": _locale,
    "zoneinfo": _zoneinfo,
    "birthdate": _birthdate,
}
