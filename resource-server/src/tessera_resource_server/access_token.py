"""The validated access token a protected handler reads: the claims of an RFC 7662 §2.2
introspection answer or of an RFC 9068 §2.2 JWT, in one typed shape.

The handler uses it to decide what the scope alone cannot: whether this resource owner
(``username``, or ``sub``) may use this particular resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Source = Literal["introspection", "jwt"]


class MalformedClaims(ValueError):
    """A claim has the wrong type (a number where a string belongs, ...)."""


@dataclass(frozen=True, slots=True)
class AccessToken:
    # The resource owner's id, or the client's for client credentials (RFC 9068 §2.2).
    sub: str | None
    client_id: str | None
    # RFC 6749 §3.3 / RFC 7662 §2.2: the granted scope values.
    scopes: frozenset[str]
    # The approving user's name (introspection only: a JWT carries no username).
    username: str | None
    exp: int | None
    iat: int | None
    iss: str | None
    aud: tuple[str, ...]
    jti: str | None
    source: Source
    # Every member, for claims this class does not name.
    claims: Mapping[str, Any] = field(repr=False)

    def has_scopes(self, *names: str) -> bool:
        return set(names) <= self.scopes

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any], source: Source) -> AccessToken:
        """From an active introspection answer or a verified JWT payload."""
        scope = _optional(claims, "scope", str)
        aud = claims.get("aud")
        if isinstance(aud, str):
            audiences: tuple[str, ...] = (aud,)
        elif isinstance(aud, list) and all(isinstance(a, str) for a in aud):
            audiences = tuple(aud)
        elif aud is None:
            audiences = ()
        else:
            raise MalformedClaims("aud")
        return cls(
            sub=_optional(claims, "sub", str),
            client_id=_optional(claims, "client_id", str),
            # RFC 6749 §3.3: space-delimited scope values.
            scopes=frozenset(scope.split(" ")) if scope else frozenset(),
            username=_optional(claims, "username", str),
            exp=_optional(claims, "exp", int),
            iat=_optional(claims, "iat", int),
            iss=_optional(claims, "iss", str),
            aud=audiences,
            jti=_optional(claims, "jti", str),
            source=source,
            claims=dict(claims),
        )


def _optional(claims: Mapping[str, Any], name: str, kind: type) -> Any:
    value = claims.get(name)
    # bool is an int in Python; a JSON true is no timestamp.
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise MalformedClaims(name)
    return value
