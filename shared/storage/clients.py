"""Registered clients (RFC 6749 §2): their type, redirect URIs, grants, scopes and secret.

The secret is generated here, returned once, and stored only as a SHA-256 digest.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import urlsplit

import orjson
from rfc3986_validator import validate_rfc3986  # type: ignore[import-untyped]

from shared.config.settings import MAX_SECRET_OVERLAP, Settings, is_loopback_host
from shared.domain import records
from shared.domain.domain_errors import Conflict, Invalid, NotFound
from shared.domain.tessera_scopes import ADMIN
from shared.domain.token_records import NEVER_EXPIRES as NEVER_EXPIRES
from shared.security import crypto
from shared.storage import keys, listing, record_changes, scopes

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient

ClientType = Literal["confidential", "public"]
CLIENT_TYPES: tuple[ClientType, ...] = ("confidential", "public")
# The grants a client may be allowed. The refresh_token grant is not among them: as in
# webMethods Integration Server, a client's refresh count decides it (0 = no refresh
# token is ever issued).
GRANT_TYPES = ("authorization_code", "implicit", "client_credentials", "password")
REFRESH_GRANT = "refresh_token"
# Grants that send the person's browser back to a redirect URI.
REDIRECTING_GRANTS = ("authorization_code", "implicit")
REQUIRE_PKCE_CHOICES = ("yes", "no", "global")
# RFC 7591 §2 grant_types as registrations name them: refresh_token among them, which
# stands for a refresh count above 0.
REGISTERED_GRANT_TYPES = (*GRANT_TYPES, REFRESH_GRANT)
# RFC 7591 §2: how a confidential client authenticates; either, it may use both. A
# public client's method is "none".
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
NO_CLIENT_AUTH = "none"
AUTH_METHODS = (*SECRET_METHODS, NO_CLIENT_AUTH)
# An imported client id (webMethods Integration Server's, kept on moving over): letters,
# digits, ".", "_" and "-", not first, at most this long. As Tessera's own ids (hex), it
# needs no escaping in a URL, a form or a command line, and never reads as an option.
MAX_CLIENT_ID = 128
_CLIENT_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_CLIENT_ID - 1}}}")
# An imported secret: long enough to be one, printable ASCII (it travels in a form and
# in HTTP Basic authentication, RFC 6749 §2.3.1).
MIN_IMPORTED_SECRET = 16
MAX_SECRET = 256
_SECRET = re.compile(r"[\x21-\x7e]+")
# Bounds of numbers an administrator sets: far beyond any sane value, and small enough
# that every time computed from them fits the records' integers.
MAX_ACCESS_TOKEN_LIFETIME = 10 * 365 * 24 * 3600
MAX_REFRESH_COUNT = 1_000_000
# OpenID Connect Core §8: the subject identifier types a client may ask for.
SUBJECT_TYPES = ("public", "pairwise")
# access_token_lifetime: None = the global default; NEVER_EXPIRES (0, from
# shared.domain.token_records) as in webMethods Integration Server.


@dataclass(slots=True)
class Client:
    client_id: str
    name: str
    type: ClientType
    redirect_uris: list[str]
    grants: list[str]
    scopes: list[str]
    version: str = ""
    description: str = ""
    # Shown on the approval page (RFC 7591 §2 logo_uri); https only, "" for none.
    logo_uri: str = ""
    # Skip the approval page when the person has approved these scopes before (README:
    # remembered consent). Off unless the administrator turns it on for the client.
    remember_consent: bool = False
    # May call the introspection endpoint (RFC 7662 §2.1 requires caller authorization).
    introspect: bool = False
    # How many times a token chain may be refreshed; 0 = no refresh token (as in
    # webMethods Integration Server).
    refresh_count: int = 0
    require_pkce: str = "global"
    # Granted when a request names no scope (RFC 6749 §3.3); a subset of ``scopes``.
    default_scopes: list[str] = field(default_factory=list)
    access_token_lifetime: int | None = None
    # JWT (RFC 9068) or opaque access tokens; None = TESSERA_ACCESS_TOKEN_FORMAT decides.
    jwt_access_tokens: bool | None = None
    secret_hash: str | None = None
    # Secret rotation (README, "Admin API"): the secret before the last rotation stays
    # valid until previous_secret_expires_at, so the client's deployments can move over.
    previous_secret_hash: str | None = None
    previous_secret_expires_at: int | None = None
    secret_rotated_at: int | None = None
    # RFC 7591 §2 token_endpoint_auth_method of a confidential client as registered
    # (client_secret_basic or client_secret_post; it may use either, RFC 6749 §2.3.1);
    # "" in a record of a release before it: client_secret_basic.
    token_endpoint_auth_method: str = ""
    # OpenID Connect Core §8: "public" (the person's own sub for every client) or
    # "pairwise" (a sub of its own per sector_identifier, a host name; §8.1).
    subject_type: str = "public"
    sector_identifier: str = ""
    # RP-Initiated Logout 1.0 §3.1: where the browser may go after signing out; exact match.
    post_logout_redirect_uris: list[str] = field(default_factory=list)
    # Back-Channel Logout 1.0 §2.2: where logout tokens are posted; "" for none.
    backchannel_logout_uri: str = ""
    enabled: bool = True
    created_at: int = field(default_factory=lambda: int(time.time()))

    @property
    def is_public(self) -> bool:
        return self.type == "public"

    @property
    def display_name(self) -> str:
        return f"{self.name} ({self.version})" if self.version else self.name

    def requires_pkce(self, settings: Settings) -> bool:
        if self.require_pkce == "global":
            return self.is_public and settings.require_pkce_public
        return self.require_pkce == "yes"

    def allows_grant(self, grant_type: str) -> bool:
        if grant_type == REFRESH_GRANT:
            return self.refresh_count > 0
        return grant_type in self.grants

    def token_lifetime(self, settings: Settings) -> int:
        """Seconds an access token of this client lives; NEVER_EXPIRES for ever."""
        if self.access_token_lifetime is None:
            return settings.access_token_lifetime
        return self.access_token_lifetime

    def wants_jwt(self, settings: Settings) -> bool:
        """JWT access tokens (RFC 9068), which always carry ``exp`` (§2.2): a client whose
        tokens never expire gets opaque ones."""
        if self.token_lifetime(settings) == NEVER_EXPIRES:
            return False
        if self.subject_type == "pairwise":
            # A JWT's sub is the person's own, and the client can read its tokens: a
            # pairwise client would learn the id its sector's sub hides (Core §8.1).
            return False
        if self.jwt_access_tokens is None:
            return settings.jwt_access_tokens
        return self.jwt_access_tokens

    def secret_matches(self, secret: str, now: float | None = None) -> bool:
        """The secret is the client's, or its previous one within the rotation's overlap."""
        given = crypto.digest(secret)
        if self.secret_hash is not None and crypto.same(self.secret_hash, given):
            return True
        if self.previous_secret_hash is None or self.previous_secret_expires_at is None:
            return False
        if (time.time() if now is None else now) >= self.previous_secret_expires_at:
            return False
        return crypto.same(self.previous_secret_hash, given)

    def public_view(self) -> dict[str, object]:
        """The record as shown to an administrator: everything but the secrets' digests."""
        view = dataclasses.asdict(self)
        del view["secret_hash"], view["previous_secret_hash"]
        return view


# A redirect URI longer than this is refused: every answer to the client carries it.
MAX_REDIRECT_URI = 2048


def _check_redirect_uri(
    uri: str, label: str = "redirect URI", field: str = "redirect_uris"
) -> None:
    """A redirection endpoint as RFC 6749 §3.1.2 and RFC 8252 §7 allow one; Invalid
    naming what is wrong. Every registration passes here (``create``)."""
    if len(uri) > MAX_REDIRECT_URI:
        raise Invalid(f"{label} is longer than {MAX_REDIRECT_URI} characters", field=field)
    if any(ch.isspace() or not ch.isprintable() for ch in uri):
        raise Invalid(f"{label} {uri!r} must not contain spaces or control characters", field=field)
    # RFC 6749 §3.1.2: an absolute URI (RFC 3986 §4.3), which has a scheme; every
    # character allowed where it stands, "%" only in escapes, nothing beyond ASCII.
    # (The validator's pattern ends in "$", which matches before a final newline too:
    # the check above has refused every newline already.)
    if validate_rfc3986(uri, rule="URI") is None:
        raise Invalid(f"{label} {uri!r} is not a valid absolute URI (RFC 3986 §4.3)", field=field)
    if "#" in uri:
        raise Invalid(f"{label} {uri!r} must not contain a fragment (RFC 6749 §3.1.2)", field=field)
    parts = urlsplit(uri)
    try:
        parts.port  # noqa: B018 - raises for a port beyond 65535
    except ValueError:
        raise Invalid(f"{label} {uri!r} has an invalid port", field=field) from None
    if parts.username is not None or parts.password is not None:
        # RFC 3986 §3.2.1 deprecates credentials in a URI, and one such as
        # https://app.example.com@evil.example/ misleads whoever reads it.
        raise Invalid(f"{label} {uri!r} must not carry a user name or password", field=field)
    scheme = parts.scheme.lower()
    if scheme in ("https", "http"):
        if not parts.hostname:
            raise Invalid(f"{label} {uri!r} must name a host", field=field)
        # RFC 6749 §3.1.2.1 and RFC 9700 §4.1: TLS for codes in transit; plain http only
        # back to the same machine (RFC 8252 §7.3).
        if scheme == "http" and not is_loopback_host(parts.hostname):
            raise Invalid(f"{label} {uri!r} must use https (http only on loopback)", field=field)
    elif "." not in scheme:
        # RFC 8252 §7.1: a native app's private-use scheme is a domain name it controls,
        # reversed (com.example.app). That also leaves out javascript:, data:, file: and
        # every other scheme a browser or the system itself acts on.
        raise Invalid(
            f"{label} {uri!r}: a scheme other than https (or http on loopback) must be "
            "a private-use scheme named by a reversed domain, such as com.example.app "
            "(RFC 8252 §7.1)",
            field=field,
        )


# A logo URI longer than this is refused: it is shown in every approval page.
MAX_LOGO_URI = 2048


def _check_logo_uri(uri: str) -> None:
    """RFC 7591 §2 ``logo_uri``: a URL of an image the approval page shows. Only https:
    the pages' Content-Security-Policy allows images from https and from Tessera itself,
    a ``javascript:`` or ``data:`` URL has no place in an ``img``, and plain http would
    let anyone on the path replace the logo the person trusts (RFC 7591 §5)."""
    parts = urlsplit(uri)
    if len(uri) > MAX_LOGO_URI:
        raise Invalid(f"logo URI is longer than {MAX_LOGO_URI} characters", field="logo_uri")
    if any(ch.isspace() or not ch.isprintable() for ch in uri):
        raise Invalid("logo URI must not contain spaces or control characters", field="logo_uri")
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise Invalid(f"logo URI {uri!r} must be an absolute https URL", field="logo_uri")
    if parts.username is not None or parts.password is not None:
        raise Invalid(f"logo URI {uri!r} must not carry credentials", field="logo_uri")


def _check_backchannel_logout_uri(uri: str) -> None:
    """Back-Channel Logout 1.0 §2.2: an absolute URI without a fragment, where Tessera
    itself will send requests: https, or http to the same machine (development)."""
    if len(uri) > MAX_REDIRECT_URI:
        raise Invalid(
            f"back-channel logout URI is longer than {MAX_REDIRECT_URI} characters",
            field="backchannel_logout_uri",
        )
    if any(ch.isspace() or not ch.isprintable() for ch in uri):
        raise Invalid(
            "back-channel logout URI must not contain spaces or control characters",
            field="backchannel_logout_uri",
        )
    if validate_rfc3986(uri, rule="URI") is None or "#" in uri:
        raise Invalid(
            f"back-channel logout URI {uri!r} must be an absolute URI, no fragment",
            field="backchannel_logout_uri",
        )
    parts = urlsplit(uri)
    if parts.username is not None or parts.password is not None:
        raise Invalid(
            f"back-channel logout URI {uri!r} must not carry credentials",
            field="backchannel_logout_uri",
        )
    scheme = parts.scheme.lower()
    if not parts.hostname or not (
        scheme == "https" or (scheme == "http" and is_loopback_host(parts.hostname))
    ):
        raise Invalid(
            f"back-channel logout URI {uri!r} must use https (http only on loopback)",
            field="backchannel_logout_uri",
        )


def _sector_identifier(subject_type: str, sector_identifier: str, redirect_uris: list[str]) -> str:
    """The sector a pairwise client's subs are computed for (OpenID Connect Core §8.1): the
    host given, else the one host of its redirect URIs; "" for a public subject type."""
    if subject_type not in SUBJECT_TYPES:
        raise Invalid(
            f"subject type must be one of {', '.join(SUBJECT_TYPES)}", field="subject_type"
        )
    if subject_type == "public":
        if sector_identifier:
            raise Invalid(
                "a sector identifier is only for the pairwise subject type",
                field="sector_identifier",
            )
        return ""
    if sector_identifier:
        if validate_rfc3986(f"https://{sector_identifier}/", rule="URI") is None or any(
            ch in sector_identifier for ch in "/:@?#"
        ):
            raise Invalid(
                f"sector identifier {sector_identifier!r} must be a host name",
                field="sector_identifier",
            )
        return sector_identifier.lower()
    hosts = {urlsplit(uri).hostname or urlsplit(uri).scheme for uri in redirect_uris}
    if len(hosts) != 1:
        # §8.1: with several hosts, the client names its sector.
        raise Invalid(
            "a pairwise client whose redirect URIs are not on one host needs a sector identifier",
            field="sector_identifier",
        )
    return hosts.pop().lower()


def _check_remember_consent(client_type: str, redirect_uris: list[str], grants: list[str]) -> None:
    """RFC 8252 §8.6: a request of a native app that cannot prove who it is must be asked
    for as if nothing had been approved before: another app may claim its private-use
    scheme or loopback port. So a public client may remember consent only when every
    redirect URI is https, where the registered host alone receives the answer (the
    "other measures" of RFC 6749 §10.2). The same holds for any client allowed the
    implicit grant: the token itself goes to the redirect URI (RFC 6749 §4.2.2), where a
    confidential client's secret protects nothing."""
    if client_type != "public" and "implicit" not in grants:
        return
    who = "a public client" if client_type == "public" else "a client allowed implicit"
    for uri in redirect_uris:
        if urlsplit(uri).scheme.lower() != "https":
            raise Invalid(
                f"{who} with the redirect URI {uri!r} cannot remember consent: "
                "another app could receive the answer (RFC 8252 §8.6)",
                field="remember_consent",
            )


# What an administrator sets on a client, by the record's names (``update`` takes these).
SETTABLE = frozenset(
    {
        "name",
        "type",
        "redirect_uris",
        "grants",
        "scopes",
        "version",
        "description",
        "logo_uri",
        "remember_consent",
        "introspect",
        "refresh_count",
        "require_pkce",
        "default_scopes",
        "access_token_lifetime",
        "jwt_access_tokens",
        "subject_type",
        "sector_identifier",
        "post_logout_redirect_uris",
        "backchannel_logout_uri",
        "token_endpoint_auth_method",
        "enabled",
    }
)


def _check_settings(client: Client) -> None:
    """Every rule of a client's settings but the scopes' being defined; Invalid naming
    the first bad value (by its RFC 7591 name, as the admin API shows it)."""
    if not client.name.strip():
        raise Invalid("client name must not be empty", field="client_name")
    if client.type not in CLIENT_TYPES:
        raise Invalid(
            f"client type must be one of {', '.join(CLIENT_TYPES)}",
            field="token_endpoint_auth_method",
        )
    method = client.token_endpoint_auth_method
    if method and (client.is_public or method not in SECRET_METHODS):
        raise Invalid(
            f"token endpoint auth method {method!r} does not fit a {client.type} client",
            field="token_endpoint_auth_method",
        )
    grants = client.grants
    for grant in grants:
        if grant not in GRANT_TYPES:
            raise Invalid(
                f"grant {grant!r} is not supported; choose from {', '.join(GRANT_TYPES)}",
                field="grant_types",
            )
    if not grants:
        raise Invalid("a client needs at least one grant", field="grant_types")
    for grant in REDIRECTING_GRANTS:
        if grant in grants and not client.redirect_uris:
            raise Invalid(
                f"the {grant} grant needs at least one redirect URI", field="redirect_uris"
            )
    if "client_credentials" in grants and client.is_public:
        # RFC 6749 §4.4: only confidential clients may use client credentials.
        raise Invalid(
            "the client_credentials grant is for confidential clients only", field="grant_types"
        )
    for uri in client.redirect_uris:
        _check_redirect_uri(uri)
    if client.logo_uri:
        _check_logo_uri(client.logo_uri)
    for uri in client.post_logout_redirect_uris:
        _check_redirect_uri(uri, "post-logout redirect URI", "post_logout_redirect_uris")
    if client.backchannel_logout_uri:
        _check_backchannel_logout_uri(client.backchannel_logout_uri)
    if client.remember_consent:
        _check_remember_consent(client.type, client.redirect_uris, grants)
    if client.refresh_count < 0:
        raise Invalid("refresh count must be 0 or more", field="refresh_count")
    if client.require_pkce not in REQUIRE_PKCE_CHOICES:
        raise Invalid(
            f"require-pkce must be one of {', '.join(REQUIRE_PKCE_CHOICES)}", field="require_pkce"
        )
    if client.introspect and client.is_public:
        raise Invalid(
            "a public client cannot authenticate, so it cannot introspect", field="introspect"
        )
    lifetime = client.access_token_lifetime
    if lifetime is not None and lifetime < 0:
        raise Invalid(
            "access token lifetime must be a number of seconds, or never",
            field="access_token_lifetime",
        )
    if lifetime == NEVER_EXPIRES and client.jwt_access_tokens:
        raise Invalid(
            "JWT access tokens always expire (RFC 9068 §2.2); choose a lifetime",
            field="access_token_format",
        )
    if ADMIN in client.scopes and set(grants) != {"client_credentials"}:
        # A grant with a person in it would let anyone who can sign in hold an admin
        # token: the admin API takes the scope from clients acting for themselves only.
        raise Invalid(
            f"the scope {ADMIN} is for clients with the client_credentials grant alone",
            field="scope",
        )
    if lifetime is not None and lifetime > MAX_ACCESS_TOKEN_LIFETIME:
        raise Invalid(
            f"access token lifetime is at most {MAX_ACCESS_TOKEN_LIFETIME} seconds (ten years)",
            field="access_token_lifetime",
        )
    if client.refresh_count > MAX_REFRESH_COUNT:
        raise Invalid(f"refresh count is at most {MAX_REFRESH_COUNT}", field="refresh_count")
    malformed = [name for name in client.scopes if not scopes.is_scope_token(name)]
    if malformed:
        # RFC 6749 §3.3; checked before any lookup, whatever Redis may hold.
        raise Invalid(f"not valid scope tokens (RFC 6749 §3.3): {malformed!r}", field="scope")
    if not set(client.default_scopes) <= set(client.scopes):
        raise Invalid("default scopes must be among the client's scopes", field="default_scope")


async def _checked(redis: RedisClient, client: Client) -> Client:
    """``client`` as stored: its settings checked (``_check_settings``, and every scope
    defined), lists without duplicates, the name trimmed, the pairwise sector decided."""
    client = dataclasses.replace(
        client,
        name=client.name.strip(),
        redirect_uris=list(dict.fromkeys(client.redirect_uris)),
        grants=list(dict.fromkeys(client.grants)),
        scopes=list(dict.fromkeys(client.scopes)),
        default_scopes=list(dict.fromkeys(client.default_scopes)),
        post_logout_redirect_uris=list(dict.fromkeys(client.post_logout_redirect_uris)),
    )
    _check_settings(client)
    sector = _sector_identifier(client.subject_type, client.sector_identifier, client.redirect_uris)
    if sector and client.jwt_access_tokens:
        raise Invalid(
            "a pairwise client gets opaque access tokens: a JWT's sub is not pairwise",
            field="access_token_format",
        )
    defined = await scopes.get_many(redis, client.scopes)
    missing = [s for s in client.scopes if s not in defined]
    if missing:
        raise Invalid(
            f"scope(s) not defined: {', '.join(missing)} (add them with 'tessera scope add')",
            field="scope",
        )
    return dataclasses.replace(client, sector_identifier=sector)


def _check_imported_id(client_id: str) -> None:
    if _CLIENT_ID.fullmatch(client_id) is None:
        raise Invalid(
            f"client id {client_id!r}: 1 to {MAX_CLIENT_ID} letters, digits, '.', '_' or '-', "
            "not starting with '-' or '.'",
            field="client_id",
        )


def is_acceptable_secret(secret: str) -> bool:
    """Whether a secret an administrator gives (an import, a rotation) may be the client's:
    it travels in a form and in Basic auth (RFC 6749 §2.3.1), so visible ASCII only."""
    return MIN_IMPORTED_SECRET <= len(secret) <= MAX_SECRET and bool(_SECRET.fullmatch(secret))


def _check_given_secret(secret: str) -> None:
    if not is_acceptable_secret(secret):
        # The secret itself is never quoted: the message may reach a log.
        raise Invalid(
            f"a client secret given must be {MIN_IMPORTED_SECRET} to {MAX_SECRET} printable "
            "ASCII characters without spaces",
            field="client_secret",
        )


async def create(
    redis: RedisClient,
    *,
    name: str,
    client_type: str,
    redirect_uris: list[str],
    grants: list[str],
    scope_names: list[str],
    version: str = "",
    description: str = "",
    logo_uri: str = "",
    remember_consent: bool = False,
    introspect: bool = False,
    refresh_count: int = 0,
    require_pkce: str = "global",
    default_scopes: list[str] | None = None,
    access_token_lifetime: int | None = None,
    jwt_access_tokens: bool | None = None,
    subject_type: str = "public",
    sector_identifier: str = "",
    post_logout_redirect_uris: list[str] | None = None,
    backchannel_logout_uri: str = "",
    token_endpoint_auth_method: str = "",
    enabled: bool = True,
    client_id: str | None = None,
    secret: str | None = None,
) -> tuple[Client, str | None]:
    """Validate and store a new client; returns it with its secret (None for public clients).

    ``client_id`` and ``secret`` import an existing registration (webMethods Integration
    Server's, moving over): the id is kept (Conflict when taken), the secret stored as its
    digest, as a generated one. Raises Invalid naming the first bad value; nothing is
    stored then.
    """
    if client_id is not None:
        _check_imported_id(client_id)
    if secret is not None:
        if client_type == "public":
            raise Invalid("a public client has no secret", field="client_secret")
        _check_given_secret(secret)
    client = await _checked(
        redis,
        Client(
            client_id=client_id if client_id is not None else crypto.random_id(),
            name=name,
            type=cast(ClientType, client_type),
            redirect_uris=redirect_uris,
            grants=grants,
            scopes=scope_names,
            version=version,
            description=description,
            logo_uri=logo_uri,
            remember_consent=remember_consent,
            introspect=introspect,
            refresh_count=refresh_count,
            require_pkce=require_pkce,
            default_scopes=default_scopes or [],
            access_token_lifetime=access_token_lifetime,
            jwt_access_tokens=jwt_access_tokens,
            subject_type=subject_type,
            sector_identifier=sector_identifier,
            post_logout_redirect_uris=post_logout_redirect_uris or [],
            backchannel_logout_uri=backchannel_logout_uri,
            token_endpoint_auth_method=token_endpoint_auth_method,
            enabled=enabled,
        ),
    )
    if client.type == "confidential" and secret is None:
        secret = crypto.random_token(32)
    client.secret_hash = crypto.digest(secret) if secret else None
    if not await redis.set(keys.client(client.client_id), orjson.dumps(client), nx=True):
        raise Conflict(f"client id {client.client_id!r} is taken")
    await redis.publish(keys.CLIENT_CHANGES, client.client_id)
    await redis.sadd(keys.CLIENT_INDEX, client.client_id)
    return client, secret


async def _change(
    redis: RedisClient, client_id: str, change: Callable[[Client], Awaitable[Client]]
) -> tuple[Client, Client]:
    """Apply ``change`` to the client as stored (``record_changes``), and tell the
    services' caches; (before, after)."""
    before, after = await record_changes.change(
        redis, keys.client(client_id), Client, change, kind="client", name=client_id
    )
    await redis.publish(keys.CLIENT_CHANGES, client_id)
    return before, after


async def update(
    redis: RedisClient, client_id: str, changes: Mapping[str, Any]
) -> tuple[Client, Client]:
    """Change a client's settings (``SETTABLE``, by the record's names), checked as a
    new client's are; (before, after). A client's type stays: a public client has no
    secret to authenticate with, and a confidential one's secret would stay valid."""
    unknown = set(changes) - SETTABLE
    if unknown:
        raise TypeError(f"not settable: {sorted(unknown)}")

    async def change(client: Client) -> Client:
        changed = dataclasses.replace(client, **changes)
        if changed.type != client.type:
            raise Invalid(
                "a client cannot change between public and confidential; register a new one",
                field="token_endpoint_auth_method",
            )
        return changed if set(changes) <= {"enabled"} else await _checked(redis, changed)

    return await _change(redis, client_id, change)


async def rotate_secret(
    redis: RedisClient, client_id: str, *, overlap: int, secret: str | None = None
) -> tuple[Client, Client, str]:
    """A new secret for a confidential client (``secret``, or a generated one); the one it
    replaces stays valid for ``overlap`` seconds (0: not at all), and one kept from an
    earlier rotation no longer. (before, after, the new secret); Conflict for a public
    client, which has none."""
    if not 0 <= overlap <= MAX_SECRET_OVERLAP:
        raise Invalid(
            f"the overlap is a number of seconds from 0 to {MAX_SECRET_OVERLAP} (90 days)",
            field="overlap_seconds",
        )
    if secret is not None:
        _check_given_secret(secret)
    new_secret = secret if secret is not None else crypto.random_token(32)

    async def change(client: Client) -> Client:
        if client.is_public:
            raise Conflict(f"client {client_id!r} is public: it has no secret to rotate")
        now = int(time.time())
        keep = overlap > 0 and client.secret_hash is not None
        client.previous_secret_hash = client.secret_hash if keep else None
        client.previous_secret_expires_at = now + overlap if keep else None
        client.secret_hash = crypto.digest(new_secret)
        client.secret_rotated_at = now
        return client

    before, after = await _change(redis, client_id, change)
    return before, after, new_secret


async def save(redis: RedisClient, client: Client) -> None:
    await redis.set(keys.client(client.client_id), orjson.dumps(client))
    await redis.publish(keys.CLIENT_CHANGES, client.client_id)


async def get(redis: RedisClient, client_id: str) -> Client | None:
    raw = await redis.get(keys.client(client_id))
    return records.from_json(Client, raw) if raw else None


async def existing(redis: RedisClient, client_id: str) -> Client:
    """The client registered as ``client_id``; NotFound when there is none."""
    client = await get(redis, client_id)
    if client is None:
        raise NotFound("client", client_id)
    return client


async def list_all(redis: RedisClient) -> list[Client]:
    # Replies are text: every Tessera Redis client decodes them (decode_responses).
    client_ids = cast("set[str]", await redis.smembers(keys.CLIENT_INDEX))
    async with redis.pipeline(transaction=False) as pipe:
        for client_id in client_ids:
            pipe.get(keys.client(client_id))
        raws = await pipe.execute()
    found = (records.from_json(Client, raw) for raw in raws if raw)
    return sorted(found, key=lambda c: (c.name, c.client_id))


async def page(
    redis: RedisClient,
    *,
    after: str | None,
    limit: int,
    keep: Callable[[Client], bool] = lambda client: True,
) -> listing.Page[Client]:
    """A page of the clients ``keep`` passes, by client id."""

    client_ids = cast("set[str]", await redis.smembers(keys.CLIENT_INDEX))
    fetch = listing.json_records(redis, Client, keys.client)
    return await listing.page(client_ids, after=after, limit=limit, fetch=fetch, keep=keep)


async def set_enabled(redis: RedisClient, client_id: str, enabled: bool) -> Client:
    _, after = await update(redis, client_id, {"enabled": enabled})
    return after


async def delete(redis: RedisClient, client_id: str) -> None:
    if not await redis.delete(keys.client(client_id)):
        raise NotFound("client", client_id)
    await redis.publish(keys.CLIENT_CHANGES, client_id)
    await redis.srem(keys.CLIENT_INDEX, client_id)
