"""The Redis key schema: the prefix and every key name.

Nothing else in Tessera spells a key. Everything issued from one grant (one approval)
belongs to a grant family whose id is a hash tag, ``{g:<family>}``, so the code, the
tokens and the family's bookkeeping share one Redis Cluster slot: every Lua script
(``scripts``, one file each in ``lua/``) touches the keys of one slot only, as Redis
Cluster requires.

Only Tessera chooses hash tags. A key's part that comes from outside (a scope name, a
username, a client id, an interaction id: anything a caller or an administrator names)
goes through ``_named``, so that no name can pick the slot its key lands in, or put its
key into a grant family's slot.
"""

from __future__ import annotations

PREFIX = "tessera"

CLIENT_INDEX = f"{PREFIX}:clients"
SCOPE_INDEX = f"{PREFIX}:scopes"
USER_INDEX = f"{PREFIX}:users"
# Pub/sub channel: the id of every client whose record changed, for the services' caches.
CLIENT_CHANGES = f"{PREFIX}:client-changes"
# Stream of the audit events of administrative changes (shared.storage.audit), capped.
AUDIT = f"{PREFIX}:audit"
# The key of the log fingerprints (shared.security.fingerprint): random, made once, never expires.
LOG_FINGERPRINT_KEY = f"{PREFIX}:log-fingerprint-key"
# The salt of pairwise subject identifiers (shared.storage.subjects): random, made once,
# never expires; losing it would change every pairwise sub (OpenID Connect Core §8.1).
PAIRWISE_SALT = f"{PREFIX}:pairwise-salt"


def _named(name: str) -> str:
    """A name from outside, as the last part of a key, kept out of hash tags.

    Redis Cluster hashes only what lies between a key's first ``{`` and the first ``}``
    after it, unless that is empty: then it hashes the whole key. So a name holding a
    ``{`` (a scope ``a{g:x}b`` is a valid scope token, RFC 6749 §3.3) is preceded by an
    empty tag, ``{}``, and its whole key is hashed; a name without one, the common case,
    is left as it is, so the keys of every such name stay those earlier releases wrote.
    The mapping stays one-to-one: a name that starts with ``{}`` holds a ``{`` and gets
    its own ``{}`` before it. Nothing before the name holds a ``{``."""
    return f"{{}}{name}" if "{" in name else name


def client(client_id: str) -> str:
    return f"{PREFIX}:client:{_named(client_id)}"


def scope(name: str) -> str:
    return f"{PREFIX}:scope:{_named(name)}"


def user(username: str) -> str:
    return f"{PREFIX}:user:{_named(username)}"


def session(session_digest: str) -> str:
    return f"{PREFIX}:session:{session_digest}"


def session_clients(sid: str) -> str:
    """Set of the clients issued a code of an OpenID Connect request in the browser
    session whose public id is ``sid`` (Back-Channel Logout 1.0 §2.1): whom its sign-out
    tells. ``sid`` is Tessera's own random id (``services.authorize.sessions``)."""
    return f"{PREFIX}:session-clients:{_named(sid)}"


def interaction(interaction_id: str) -> str:
    return f"{PREFIX}:interaction:{_named(interaction_id)}"


def login_known_address(username_digest: str, address: str) -> str:
    """Set when the username signs in from ``address`` (as limits count addresses,
    ``shared.web.client_address.limit_subject``): for a while that address is the owner's,
    exempt from the per-username and per-address sign-in limits (``login_throttle``)."""
    return f"{PREFIX}:login-known:{username_digest}:{_named(address)}"


def login_addresses(username_digest: str) -> str:
    """Set of the addresses holding a per-(username, address) failure count in the
    current window, so ``tessera user unlock`` clears them without scanning Redis."""
    return f"{PREFIX}:login-addresses:{username_digest}"


def rate_counter(limit: str, subject: str) -> str:
    """The count of one rate limit's window for one subject (``shared.storage.rate_limits``)."""
    return f"{PREFIX}:rate:{limit}:{_named(subject)}"


def client_families(client_id: str) -> str:
    """Sorted set of the client's grant families, scored by when their last token expires,
    so token management can list and revoke by client without scanning Redis."""
    return f"{PREFIX}:client-families:{_named(client_id)}"


def user_families(username: str) -> str:
    """Sorted set of the families issued for a person, scored as ``client_families``."""
    return f"{PREFIX}:user-families:{_named(username)}"


def consents(username: str) -> str:
    """Hash of the person's remembered approvals: client id -> JSON record of the approved
    scopes and the first-approved and last-used times (see ``consents``). One key, so
    every change to a person's approval of a client is one script on one slot."""
    return f"{PREFIX}:consents:{_named(username)}"


def client_consents(client_id: str) -> str:
    """Set of the people who have approved a client, so deleting the client can forget
    their approvals without scanning Redis."""
    return f"{PREFIX}:client-consents:{_named(client_id)}"


def _family(family: str) -> str:
    # Family ids are Tessera's own (families.new_family); one read from a presented code
    # or token has passed families.family_of (letters, digits, "-" and "_") first.
    return f"{PREFIX}:{{g:{family}}}"


def code(family: str, code_digest: str) -> str:
    return f"{_family(family)}:code:{code_digest}"


def access_token(family: str, token_digest: str) -> str:
    return f"{_family(family)}:at:{token_digest}"


def jwt_access_token(family: str, jti_digest: str) -> str:
    return f"{_family(family)}:jwt:{jti_digest}"


def first_access_token(family: str) -> str:
    """The family's first access token, named by the family alone (its digest is in the
    value): a family of one token, as every client credentials, password and implicit
    grant is, then needs one key and no member set, and can still be revoked by family."""
    return f"{_family(family)}:at"


def first_jwt_access_token(family: str) -> str:
    """As ``first_access_token``, for a JWT's record (found by its ``jti``)."""
    return f"{_family(family)}:jwt"


def refresh_token(family: str, token_digest: str) -> str:
    return f"{_family(family)}:rt:{token_digest}"


def is_refresh_token(key: str) -> bool:
    return ":rt:" in key


def family_members(family: str) -> str:
    """Set of the family's token keys other than its first access token, so the family
    can be revoked as one."""
    return f"{_family(family)}:members"


def family_revoked(family: str) -> str:
    """Tombstone: set when the family is revoked, so nothing more is issued into it."""
    return f"{_family(family)}:revoked"


def family_keys(family: str) -> list[str]:
    """The family's own keys, in the order the Lua scripts take them (``family`` in their
    headers): member set, tombstone, first access token, first JWT access token's record."""
    return [
        family_members(family),
        family_revoked(family),
        first_access_token(family),
        first_jwt_access_token(family),
    ]


# How the value rotate_refresh_token.lua leaves in place of a rotated refresh token's record
# begins: "rotated:<ms>:<client_id>", then ":last" at the end of a chain.
ROTATED_MARKER = "rotated:"
