"""Registered clients (RFC 6749 §2): their type, redirect URIs, grants, scopes and secret.

The secret is generated here, returned once, and stored only as a SHA-256 digest.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, cast
from urllib.parse import urlsplit

import orjson
from rfc3986_validator import validate_rfc3986  # type: ignore[import-untyped]

from shared.config.settings import Settings, is_loopback_host
from shared.domain import records
from shared.domain.domain_errors import Invalid, NotFound
from shared.domain.token_records import NEVER_EXPIRES as NEVER_EXPIRES
from shared.security import crypto
from shared.storage import keys, scopes

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

    def secret_matches(self, secret: str) -> bool:
        return self.secret_hash is not None and crypto.same(self.secret_hash, crypto.digest(secret))

    def public_view(self) -> dict[str, object]:
        """The record as shown to an administrator: everything but the secret's digest."""
        view = dataclasses.asdict(self)
        del view["secret_hash"]
        return view


# A redirect URI longer than this is refused: every answer to the client carries it.
MAX_REDIRECT_URI = 2048


def _check_redirect_uri(uri: str, label: str = "redirect URI") -> None:
    """A redirection endpoint as RFC 6749 §3.1.2 and RFC 8252 §7 allow one; Invalid
    naming what is wrong. Every registration passes here (``create``)."""
    if len(uri) > MAX_REDIRECT_URI:
        raise Invalid(f"{label} is longer than {MAX_REDIRECT_URI} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in uri):
        raise Invalid(f"{label} {uri!r} must not contain spaces or control characters")
    # RFC 6749 §3.1.2: an absolute URI (RFC 3986 §4.3), which has a scheme; every
    # character allowed where it stands, "%" only in escapes, nothing beyond ASCII.
    # (The validator's pattern ends in "$", which matches before a final newline too:
    # the check above has refused every newline already.)
    if validate_rfc3986(uri, rule="URI") is None:
        raise Invalid(f"{label} {uri!r} is not a valid absolute URI (RFC 3986 §4.3)")
    if "#" in uri:
        raise Invalid(f"{label} {uri!r} must not contain a fragment (RFC 6749 §3.1.2)")
    parts = urlsplit(uri)
    try:
        parts.port  # noqa: B018 - raises for a port beyond 65535
    except ValueError:
        raise Invalid(f"{label} {uri!r} has an invalid port") from None
    if parts.username is not None or parts.password is not None:
        # RFC 3986 §3.2.1 deprecates credentials in a URI, and one such as
        # https://app.example.com@evil.example/ misleads whoever reads it.
        raise Invalid(f"{label} {uri!r} must not carry a user name or password")
    scheme = parts.scheme.lower()
    if scheme in ("https", "http"):
        if not parts.hostname:
            raise Invalid(f"{label} {uri!r} must name a host")
        # RFC 6749 §3.1.2.1 and RFC 9700 §4.1: TLS for codes in transit; plain http only
        # back to the same machine (RFC 8252 §7.3).
        if scheme == "http" and not is_loopback_host(parts.hostname):
            raise Invalid(f"{label} {uri!r} must use https (http only on loopback)")
    elif "." not in scheme:
        # RFC 8252 §7.1: a native app's private-use scheme is a domain name it controls,
        # reversed (com.example.app). That also leaves out javascript:, data:, file: and
        # every other scheme a browser or the system itself acts on.
        raise Invalid(
            f"{label} {uri!r}: a scheme other than https (or http on loopback) must be "
            "a private-use scheme named by a reversed domain, such as com.example.app "
            "(RFC 8252 §7.1)"
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
        raise Invalid(f"logo URI is longer than {MAX_LOGO_URI} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in uri):
        raise Invalid("logo URI must not contain spaces or control characters")
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise Invalid(f"logo URI {uri!r} must be an absolute https URL")
    if parts.username is not None or parts.password is not None:
        raise Invalid(f"logo URI {uri!r} must not carry credentials")


def _check_backchannel_logout_uri(uri: str) -> None:
    """Back-Channel Logout 1.0 §2.2: an absolute URI without a fragment, where Tessera
    itself will send requests: https, or http to the same machine (development)."""
    if len(uri) > MAX_REDIRECT_URI:
        raise Invalid(f"back-channel logout URI is longer than {MAX_REDIRECT_URI} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in uri):
        raise Invalid("back-channel logout URI must not contain spaces or control characters")
    if validate_rfc3986(uri, rule="URI") is None or "#" in uri:
        raise Invalid(f"back-channel logout URI {uri!r} must be an absolute URI, no fragment")
    parts = urlsplit(uri)
    if parts.username is not None or parts.password is not None:
        raise Invalid(f"back-channel logout URI {uri!r} must not carry credentials")
    scheme = parts.scheme.lower()
    if not parts.hostname or not (
        scheme == "https" or (scheme == "http" and is_loopback_host(parts.hostname))
    ):
        raise Invalid(f"back-channel logout URI {uri!r} must use https (http only on loopback)")


def _sector_identifier(subject_type: str, sector_identifier: str, redirect_uris: list[str]) -> str:
    """The sector a pairwise client's subs are computed for (OpenID Connect Core §8.1): the
    host given, else the one host of its redirect URIs; "" for a public subject type."""
    if subject_type not in SUBJECT_TYPES:
        raise Invalid(f"subject type must be one of {', '.join(SUBJECT_TYPES)}")
    if subject_type == "public":
        if sector_identifier:
            raise Invalid("a sector identifier is only for the pairwise subject type")
        return ""
    if sector_identifier:
        if validate_rfc3986(f"https://{sector_identifier}/", rule="URI") is None or any(
            ch in sector_identifier for ch in "/:@?#"
        ):
            raise Invalid(f"sector identifier {sector_identifier!r} must be a host name")
        return sector_identifier.lower()
    hosts = {urlsplit(uri).hostname or urlsplit(uri).scheme for uri in redirect_uris}
    if len(hosts) != 1:
        # §8.1: with several hosts, the client names its sector.
        raise Invalid(
            "a pairwise client whose redirect URIs are not on one host needs a sector identifier"
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
                "another app could receive the answer (RFC 8252 §8.6)"
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
) -> tuple[Client, str | None]:
    """Validate and store a new client; returns it with its secret (None for public clients).

    Raises Invalid naming the first bad value; nothing is stored then.
    """
    if not name.strip():
        raise Invalid("client name must not be empty")
    if client_type not in CLIENT_TYPES:
        raise Invalid(f"client type must be one of {', '.join(CLIENT_TYPES)}")
    for grant in grants:
        if grant not in GRANT_TYPES:
            raise Invalid(f"grant {grant!r} is not supported; choose from {', '.join(GRANT_TYPES)}")
    if not grants:
        raise Invalid("a client needs at least one grant")
    for grant in REDIRECTING_GRANTS:
        if grant in grants and not redirect_uris:
            raise Invalid(f"the {grant} grant needs at least one redirect URI")
    if "client_credentials" in grants and client_type == "public":
        # RFC 6749 §4.4: only confidential clients may use client credentials.
        raise Invalid("the client_credentials grant is for confidential clients only")
    for uri in redirect_uris:
        _check_redirect_uri(uri)
    if logo_uri:
        _check_logo_uri(logo_uri)
    sector = _sector_identifier(subject_type, sector_identifier, redirect_uris)
    if sector and jwt_access_tokens:
        raise Invalid("a pairwise client gets opaque access tokens: a JWT's sub is not pairwise")
    for uri in post_logout_redirect_uris or []:
        _check_redirect_uri(uri, "post-logout redirect URI")
    if backchannel_logout_uri:
        _check_backchannel_logout_uri(backchannel_logout_uri)
    if remember_consent:
        _check_remember_consent(client_type, redirect_uris, grants)
    if refresh_count < 0:
        raise Invalid("refresh count must be 0 or more")
    if require_pkce not in REQUIRE_PKCE_CHOICES:
        raise Invalid(f"require-pkce must be one of {', '.join(REQUIRE_PKCE_CHOICES)}")
    if introspect and client_type == "public":
        raise Invalid("a public client cannot authenticate, so it cannot introspect")
    if access_token_lifetime is not None and access_token_lifetime < 0:
        raise Invalid("access token lifetime must be a number of seconds, or never")
    if access_token_lifetime == NEVER_EXPIRES and jwt_access_tokens:
        raise Invalid("JWT access tokens always expire (RFC 9068 §2.2); choose a lifetime")
    scope_names = list(dict.fromkeys(scope_names))
    default_scopes = list(dict.fromkeys(default_scopes or []))
    malformed = [name for name in scope_names if not scopes.is_scope_token(name)]
    if malformed:
        # RFC 6749 §3.3; checked before any lookup, whatever Redis may hold.
        raise Invalid(f"not valid scope tokens (RFC 6749 §3.3): {malformed!r}")
    if not set(default_scopes) <= set(scope_names):
        raise Invalid("default scopes must be among the client's scopes")
    defined = await scopes.get_many(redis, scope_names)
    missing = [s for s in scope_names if s not in defined]
    if missing:
        raise Invalid(
            f"scope(s) not defined: {', '.join(missing)} (add them with 'tessera scope add')"
        )

    secret = crypto.random_token(32) if client_type == "confidential" else None
    client = Client(
        client_id=crypto.random_id(),
        name=name.strip(),
        type=client_type,
        redirect_uris=list(dict.fromkeys(redirect_uris)),
        grants=list(dict.fromkeys(grants)),
        scopes=scope_names,
        version=version,
        description=description,
        logo_uri=logo_uri,
        remember_consent=remember_consent,
        introspect=introspect,
        refresh_count=refresh_count,
        require_pkce=require_pkce,
        default_scopes=default_scopes,
        access_token_lifetime=access_token_lifetime,
        jwt_access_tokens=jwt_access_tokens,
        secret_hash=crypto.digest(secret) if secret else None,
        subject_type=subject_type,
        sector_identifier=sector,
        post_logout_redirect_uris=list(dict.fromkeys(post_logout_redirect_uris or [])),
        backchannel_logout_uri=backchannel_logout_uri,
    )
    await save(redis, client)
    await redis.sadd(keys.CLIENT_INDEX, client.client_id)
    return client, secret


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


async def set_enabled(redis: RedisClient, client_id: str, enabled: bool) -> Client:
    client = await existing(redis, client_id)
    client.enabled = enabled
    await save(redis, client)
    return client


async def delete(redis: RedisClient, client_id: str) -> None:
    if not await redis.delete(keys.client(client_id)):
        raise NotFound("client", client_id)
    await redis.publish(keys.CLIENT_CHANGES, client_id)
    await redis.srem(keys.CLIENT_INDEX, client_id)
