"""What ``tessera apply`` would change: the documents compared with what the admin API
holds, as a list of changes in the order they are made (scopes, clients, users created or
updated; then deletions, users first, so that nothing is deleted while in use).

An update carries only the fields that differ (a JSON Merge Patch, RFC 7396). A field a
document leaves out is left as it is. Lists whose order means nothing (redirect URIs,
grants, scopes, resources) are compared as sets. A secret is read for a creation only:
the API keeps a digest, so an existing one cannot be compared (rotate it with ``tessera
client rotate-secret``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from shared.admin.apply_documents import BadDocument, Desired, Document
from shared.storage.clients import (
    MAX_SECRET,
    MIN_IMPORTED_SECRET,
    NO_CLIENT_AUTH,
    is_acceptable_secret,
)

Action = Literal["create", "update", "delete"]
# Compared as sets: their order means nothing to Tessera.
UNORDERED_LISTS = frozenset(
    {"redirect_uris", "post_logout_redirect_uris", "grant_types", "resources"}
)
SPACE_SEPARATED = frozenset({"scope", "default_scope"})


@dataclass
class Change:
    action: Action
    kind: str  # "scope", "client", "user"
    name: str
    # field → (before, after); before is None for a creation.
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    # The request's body (create, update); a secret in it is never shown.
    body: dict[str, Any] = field(default_factory=dict)
    secret_shown_as: str | None = None

    def view(self) -> dict[str, Any]:
        """The change as -o json and -o yaml print it (no secret)."""
        shown: dict[str, Any] = {"action": self.action, "kind": self.kind, "name": self.name}
        if self.action != "delete":
            shown["fields"] = {
                name: {"before": before, "after": after}
                for name, (before, after) in self.fields.items()
            }
        if self.secret_shown_as:
            shown["secret"] = self.secret_shown_as
        return shown


@dataclass
class Current:
    """What the API holds, by name (users only when the files speak of users)."""

    scopes: dict[str, dict[str, Any]]
    clients: dict[str, dict[str, Any]]
    users: dict[str, dict[str, Any]]


def same(name: str, before: Any, after: Any) -> bool:
    """Whether a field's value held (``before``) is the one wanted (``after``)."""
    if name in UNORDERED_LISTS:
        return set(before or []) == set(after or [])
    if name in SPACE_SEPARATED:
        return set((before or "").split()) == set((after or "").split())
    return bool(before == after)


def _differences(wanted: Mapping[str, Any], held: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {
        name: (held.get(name), value)
        for name, value in wanted.items()
        if not same(name, held.get(name), value)
    }


def _create(document: Document, key: str) -> Change:
    kind = document.kind.lower()
    body = {key: document.name, **document.fields}
    change = Change(
        "create", kind, document.name, {n: (None, v) for n, v in document.fields.items()}
    )
    change.body = body
    return change


def _client_create(document: Document) -> Change:
    if not document.fields.get("client_name", "").strip():
        raise BadDocument(f"{document.where}: client {document.name!r} is new: give client_name")
    change = _create(document, "client_id")
    public = document.fields.get("token_endpoint_auth_method") == NO_CLIENT_AUTH
    if document.secret is None and not public:
        # The API would generate one, which apply never prints: no one could use it.
        raise BadDocument(
            f"{document.where}: client {document.name!r} is confidential and new: give "
            "client_secret: {fromFile: PATH} or {fromEnv: VAR} (apply never prints a secret)"
        )
    if document.secret is not None:
        if public:
            raise BadDocument(f"{document.where}: a public client (none) has no client_secret")
        secret = _read(document)
        if not is_acceptable_secret(secret):  # the API's rule, checked before any change
            raise BadDocument(
                f"{document.where}: the client_secret {document.secret.describe()} must be "
                f"{MIN_IMPORTED_SECRET} to {MAX_SECRET} printable ASCII characters, no spaces"
            )
        change.body["client_secret"] = secret
        change.secret_shown_as = f"client_secret {document.secret.describe()}"
    return change


def _user_create(document: Document) -> Change:
    change = _create(document, "username")
    if document.secret is None:
        raise BadDocument(f"{document.where}: user {document.name!r} is new: give a password")
    change.body["password"] = _read(document)
    change.secret_shown_as = f"password {document.secret.describe()}"
    claims = change.body.get("claims")
    if claims is not None:
        # A null claim (or address member) clears one; a new profile simply lacks it.
        kept = {n: v for n, v in claims.items() if v is not None}
        if isinstance(kept.get("address"), dict):
            kept["address"] = {m: v for m, v in kept["address"].items() if v is not None}
        change.body["claims"] = {n: v for n, v in kept.items() if v != {}}
    return change


def _read(document: Document) -> str:
    assert document.secret is not None
    try:
        return document.secret.read()
    except BadDocument as exc:
        raise BadDocument(f"{document.where}: {exc}") from None


def _flat(claims: Mapping[str, Any], *, held: bool) -> dict[str, Any]:
    """Claims with the address's members as ``address.member``: a document naming some
    members of the address leaves the others as they are. What is ``held`` keeps the
    address whole as well, for a document that clears it (``address: null``)."""
    flat: dict[str, Any] = {}
    for name, value in claims.items():
        if isinstance(value, dict):
            flat.update({f"{name}.{member}": text for member, text in value.items()})
            if not held:
                continue
        flat[name] = value
    return flat


def _update(document: Document, held: dict[str, Any]) -> Change | None:
    wanted = dict(document.fields)
    claims = wanted.pop("claims", None)
    fields = _differences(wanted, held)
    body = {name: after for name, (_, after) in fields.items()}
    if claims is not None:
        # Per claim, and per member of the address: those named and different; null
        # removes one (a merge patch, RFC 7396).
        changed = _differences(
            _flat(claims, held=False), _flat(held.get("claims") or {}, held=True)
        )
        fields.update({f"claims.{name}": pair for name, pair in changed.items()})
        if changed:
            patch: dict[str, Any] = {}
            for name, (_, after) in changed.items():
                claim, _, member = name.partition(".")
                if member:
                    patch.setdefault(claim, {})[member] = after
                else:
                    patch[claim] = after
            body["claims"] = patch
    if not fields:
        return None
    return Change("update", document.kind.lower(), document.name, fields, body)


def plan(desired: Desired, current: Current, prune: bool) -> list[Change]:
    """The changes, in the order they are made; BadDocument when one cannot be made."""
    changes: list[Change] = []
    for document in desired.scopes.values():
        held = current.scopes.get(document.name)
        if held is None:
            changes.append(_create(document, "name"))
        elif held.get("built_in"):
            raise BadDocument(f"{document.where}: scope {document.name!r} is built in")
        elif found := _update(document, held):
            changes.append(found)
    for document in desired.clients.values():
        held = current.clients.get(document.name)
        if held is None:
            changes.append(_client_create(document))
        elif found := _update(document, held):
            changes.append(found)
    for document in desired.users.values():
        held = current.users.get(document.name)
        if held is None:
            changes.append(_user_create(document))
        elif found := _update(document, held):
            changes.append(found)
    if prune:
        for plural, kind in (("users", "user"), ("clients", "client"), ("scopes", "scope")):
            held_names: dict[str, dict[str, Any]] = getattr(current, plural)
            for name in sorted(held_names):
                held = held_names[name]
                if (
                    name not in desired.of(plural)
                    and desired.is_managed(plural, name)
                    and not held.get("built_in")
                ):
                    changes.append(Change("delete", kind, name))
    return changes


MARKS = {"create": "+", "update": "~", "delete": "-"}


def _shown(value: Any) -> str:
    return orjson.dumps(value).decode()


def describe(change: Change) -> str:
    """A change in words: its mark and name, then a line per field."""
    lines = [f"{MARKS[change.action]} {change.kind} {change.name}"]
    for name, (before, after) in change.fields.items():
        if change.action == "create":
            lines.append(f"    {name}: {_shown(after)}")
        else:
            lines.append(f"    {name}: {_shown(before)} → {_shown(after)}")
    if change.secret_shown_as:
        lines.append(f"    {change.secret_shown_as}")
    return "\n".join(lines) + "\n"


def summary(changes: list[Change], done: bool) -> str:
    """One line: how many of each, to be made (``done`` False) or made."""
    if not changes:
        return "No changes."
    made, changed, deleted = (sum(c.action == action for c in changes) for action in MARKS)
    if done:
        return f"Applied: {made} created, {changed} updated, {deleted} deleted."
    return f"Plan: {made} to create, {changed} to update, {deleted} to delete."
