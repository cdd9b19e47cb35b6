"""The documents ``tessera apply`` reads: YAML, one or more per file, each a mapping with a
``kind`` (README, "Declarative configuration: tessera apply").

- ``kind: Scope``: ``name``, ``description``, ``resources``.
- ``kind: Client``: ``client_id`` (always: it is how a later apply finds the client again)
  and the admin API's RFC 7591 field names; ``client_secret`` only as a reference.
- ``kind: User``: ``username``, ``password`` (a reference), ``enabled``, ``claims``.
- ``kind: Managed``: name patterns per kind (``scopes``, ``clients``, ``users``): what
  ``--prune`` may delete when the files no longer name it, and nothing else.

A secret is never written in a file: ``{fromFile: PATH}`` (relative to the document's
file) or ``{fromEnv: VAR}``. Everything here is checked before any request is sent: a
bad document is refused whole, naming its file, its place in the file and the field.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tessera_resource_server.scope_resources import parse_resource

from shared.domain import user_claims
from shared.domain.domain_errors import Invalid
from shared.storage.clients import AUTH_METHODS, REGISTERED_GRANT_TYPES
from shared.storage.scopes import is_scope_token

KINDS = ("Scope", "Client", "User", "Managed")
# The representation's fields the API sets itself: a document naming one is refused.
READ_ONLY_CLIENT_FIELDS = frozenset(
    {
        "response_types",
        "created_at",
        "client_id_issued_at",
        "client_secret_expires_at",
        "secret_rotated_at",
        "previous_secret_expires_at",
    }
)


class BadDocument(ValueError):
    """A document apply refuses; the message names where and why."""


@dataclass(frozen=True)
class SecretRef:
    """Where a secret is read from: ``{fromFile: PATH}`` or ``{fromEnv: VAR}``."""

    source: str  # "fromFile" or "fromEnv"
    where: str  # the path (resolved) or the variable's name

    def describe(self) -> str:
        return f"(from file {self.where})" if self.source == "fromFile" else f"(from ${self.where})"

    def read(self) -> str:
        """The secret; BadDocument when it cannot be had. Only a trailing line end is
        dropped (a file written by ``echo``)."""
        if self.source == "fromEnv":
            value = os.environ.get(self.where)
            if value is None:
                raise BadDocument(f"the environment variable {self.where} is not set")
        else:
            try:
                value = Path(self.where).read_text(encoding="utf-8")
            except OSError as exc:
                raise BadDocument(
                    f"cannot read the secret file {self.where}: {exc.strerror}"
                ) from None
            except UnicodeDecodeError:
                raise BadDocument(f"the secret file {self.where} is not UTF-8 text") from None
        value = value.rstrip("\r\n")
        if not value:
            raise BadDocument(f"the secret {self.describe()} is empty")
        return value


@dataclass
class Document:
    kind: str
    name: str
    # The API fields the document names, in the API's own form (see NORMALIZERS).
    fields: dict[str, Any]
    where: str  # "clients.yaml, document 2"
    secret: SecretRef | None = None


@dataclass
class Desired:
    """Every document of every file, by kind, each kind's names in file order."""

    scopes: dict[str, Document] = field(default_factory=dict)
    clients: dict[str, Document] = field(default_factory=dict)
    users: dict[str, Document] = field(default_factory=dict)
    # kind ("scopes", "clients", "users") → the name patterns --prune may delete.
    managed: dict[str, list[str]] = field(default_factory=dict)
    has_managed: bool = False

    def of(self, plural: str) -> dict[str, Document]:
        found: dict[str, Document] = getattr(self, plural)
        return found

    def is_managed(self, plural: str, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.managed.get(plural, []))


# --- one value each: what a field accepts, in the API's form ----------------------------


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise BadDocument("must be text")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadDocument("must be true or false")
    return value


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadDocument("must be a whole number, 0 or more")
    return value


def _text_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadDocument("must be a list of text")
    return list(dict.fromkeys(value))


def _one_of(*choices: str | None) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value not in choices:
            shown = ", ".join("null" if c is None else c for c in choices)
            raise BadDocument(f"must be one of {shown}")
        return value

    return check


def _grants(value: Any) -> list[str]:
    grants = _text_list(value)
    for grant in grants:
        _one_of(*REGISTERED_GRANT_TYPES)(grant)
    return grants


def _scope_tokens(value: Any) -> str:
    """RFC 7591's space-separated ``scope``; a YAML list of names is accepted too."""
    names = value.split() if isinstance(value, str) else _text_list(value)
    bad = [name for name in names if not is_scope_token(name)]
    if bad:
        raise BadDocument(f"{bad[0]!r} is not a valid scope token (RFC 6749 §3.3)")
    return " ".join(dict.fromkeys(names))


def _lifetime(value: Any) -> int | None:
    return None if value is None else _count(value)


def _pkce(value: Any) -> str:
    # YAML 1.1 reads a bare yes or no as a boolean.
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(_one_of("yes", "no", "global")(value))


def _resources(value: Any) -> list[str]:
    """Each "METHOD /path/{var}" in the form the API stores, checked by the parser that
    resource servers enforce them with."""
    try:
        return list(dict.fromkeys(str(parse_resource(v)) for v in _text_list(value)))
    except ValueError as exc:
        raise BadDocument(str(exc)) from None


def _claims(value: Any) -> dict[str, Any]:
    """OpenID Connect Core §5.1 claims, checked as the API will, in the form it stores
    (a phone number in E.164); null removes a claim or an address member."""
    if not isinstance(value, dict):
        raise BadDocument("must be a mapping of OpenID Connect claims")
    try:
        return user_claims.checked_changes(value)
    except Invalid as exc:
        raise BadDocument(exc.message) from None


SCOPE_FIELDS: dict[str, Callable[[Any], Any]] = {"description": _text, "resources": _resources}
CLIENT_FIELDS: dict[str, Callable[[Any], Any]] = {
    "client_name": _text,
    "client_version": _text,
    "description": _text,
    "logo_uri": _text,
    "token_endpoint_auth_method": _one_of(*AUTH_METHODS),
    "redirect_uris": _text_list,
    "post_logout_redirect_uris": _text_list,
    "backchannel_logout_uri": _text,
    "grant_types": _grants,
    "scope": _scope_tokens,
    "default_scope": _scope_tokens,
    "refresh_count": _count,
    "access_token_lifetime": _lifetime,
    "access_token_format": _one_of("opaque", "jwt", None),
    "require_pkce": _pkce,
    "remember_consent": _flag,
    "introspect": _flag,
    "enabled": _flag,
    "subject_type": _one_of("public", "pairwise"),
    "sector_identifier": _text,
}
USER_FIELDS: dict[str, Callable[[Any], Any]] = {"enabled": _flag, "claims": _claims}
# Where each kind keeps its name, and which field holds its secret.
NAME_FIELD = {"Scope": "name", "Client": "client_id", "User": "username"}
SECRET_FIELD = {"Client": "client_secret", "User": "password"}
FIELDS = {"Scope": SCOPE_FIELDS, "Client": CLIENT_FIELDS, "User": USER_FIELDS}
PLURAL = {"Scope": "scopes", "Client": "clients", "User": "users"}


def _secret_ref(value: Any, base: Path, name: str) -> SecretRef:
    if isinstance(value, dict) and len(value) == 1:
        ((source, where),) = value.items()
        if source in ("fromFile", "fromEnv") and isinstance(where, str) and where:
            path = str(base / where) if source == "fromFile" else where
            return SecretRef(source, path)
    if isinstance(value, str | int | float):
        raise BadDocument(
            f"{name} is written in the file: a secret is never kept there; "
            f"give {name}: {{fromFile: PATH}} or {{fromEnv: VAR}}"
        )
    raise BadDocument(f"{name} must be {{fromFile: PATH}} or {{fromEnv: VAR}}")


def _document(raw: dict[str, Any], base: Path, where: str) -> Document | dict[str, list[str]]:
    kind = raw.get("kind")
    if kind not in KINDS:
        raise BadDocument(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    body = {k: v for k, v in raw.items() if k != "kind"}
    if kind == "Managed":
        return _managed(body)
    name_field, allowed = NAME_FIELD[kind], FIELDS[kind]
    name = body.pop(name_field, None)
    if not isinstance(name, str) or not name:
        raise BadDocument(f"a {kind} needs {name_field}")
    if kind == "Scope" and not is_scope_token(name):
        raise BadDocument(f"name {name!r} is not a valid scope token (RFC 6749 §3.3)")
    secret = None
    if kind in SECRET_FIELD and SECRET_FIELD[kind] in body:
        secret = _secret_ref(body.pop(SECRET_FIELD[kind]), base, SECRET_FIELD[kind])
    fields: dict[str, Any] = {}
    for key, value in body.items():
        if kind == "Client" and key in READ_ONLY_CLIENT_FIELDS:
            raise BadDocument(f"{key} is set by Tessera, not by a document")
        if key not in allowed:
            known = ", ".join(
                [name_field, *allowed, *([SECRET_FIELD[kind]] if kind in SECRET_FIELD else [])]
            )
            raise BadDocument(f"a {kind} has no field {key!r} (fields: {known})")
        try:
            fields[key] = allowed[key](value)
        except BadDocument as exc:
            raise BadDocument(f"{key} {exc}") from None
    return Document(kind, name, fields, where, secret)


def _managed(body: dict[str, Any]) -> dict[str, list[str]]:
    patterns: dict[str, list[str]] = {}
    for key, value in body.items():
        if key not in PLURAL.values():
            raise BadDocument(f"a Managed document lists scopes, clients or users, not {key!r}")
        if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
            raise BadDocument(f"{key} must be a list of name patterns, such as 'orders-*'")
        patterns[key] = value
    return patterns


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; a document with two is refused instead."""


def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"{key!r} is given twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def files_in(paths: Iterable[Path]) -> list[Path]:
    """The files named, and each directory's *.yaml and *.yml (not its subdirectories,
    nor hidden names: a mounted ConfigMap's ..data)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                p
                for p in path.iterdir()
                if p.suffix in (".yaml", ".yml") and not p.name.startswith(".") and p.is_file()
            )
        elif path.is_file():
            found.append(path)
        else:
            raise BadDocument(f"{path}: no such file or directory")
    return found


def load(paths: Iterable[Path]) -> Desired:
    desired = Desired()
    for path in files_in(paths):
        try:
            raws = list(yaml.load_all(path.read_text(), Loader=_UniqueKeyLoader))
        except yaml.MarkedYAMLError as exc:
            at = f", line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
            raise BadDocument(f"{path}{at}: not valid YAML: {exc.problem}") from None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise BadDocument(f"{path}: not readable YAML: {exc}") from None
        for number, raw in enumerate(raws, start=1):
            where = f"{path}, document {number}"
            if raw is None:
                continue
            if not isinstance(raw, dict):
                raise BadDocument(f"{where}: a document is a mapping with a kind")
            try:
                found = _document(raw, path.parent, where)
            except BadDocument as exc:
                raise BadDocument(f"{where}: {exc}") from None
            if isinstance(found, dict):
                desired.has_managed = True
                for plural, patterns in found.items():
                    desired.managed.setdefault(plural, []).extend(patterns)
                continue
            named = desired.of(PLURAL[found.kind])
            if found.name in named:
                raise BadDocument(
                    f"{where}: {found.kind} {found.name!r} is declared twice "
                    f"(also in {named[found.name].where})"
                )
            named[found.name] = found
    _check_managed(desired)
    return desired


def _check_managed(desired: Desired) -> None:
    """A kind with patterns: every name declared matches one, or it could never be pruned."""
    for plural, patterns in desired.managed.items():
        for document in desired.of(plural).values():
            if not desired.is_managed(plural, document.name):
                raise BadDocument(
                    f"{document.where}: {document.kind} {document.name!r} matches none of the "
                    f"Managed {plural} patterns ({', '.join(patterns)})"
                )
