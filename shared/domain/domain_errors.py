"""Why an operation on Tessera's records was refused: nothing has that name, it clashes
with what is stored, or a value breaks a rule.

Storage raises these; each front end answers them in one place: the admin API with
404, 409 or 422 (``services.admin.problems``), the ``tessera`` command with its message
and exit status 1 (``shared.admin.cli``). The message is public: it is written for the
administrator who asked, and names the value at fault. (OAuth's own errors, answered
to clients and browsers, are ``shared.domain.oauth_errors``.)
"""

from __future__ import annotations


class DomainError(Exception):
    """A refused operation; ``message`` (also ``str(error)``) says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """No ``kind`` (client, scope, ...) is stored under ``name``.

    ``name`` stays apart from the message so that a log can show its fingerprint instead:
    a name that names nothing may be a credential pasted in the wrong place.
    """

    def __init__(self, kind: str, name: str, message: str | None = None) -> None:
        super().__init__(message if message is not None else f"no {kind} {name!r}")
        self.kind = kind
        self.name = name


class Conflict(DomainError):
    """The operation contradicts what is stored: the name is taken, or the record is
    still in use."""


class Invalid(DomainError, ValueError):
    """A value breaks a rule (a redirect URI RFC 6749 §3.1.2 refuses, a password too
    short); nothing was stored. Also a ValueError, as Python's own bad-value error.
    ``field`` names the value at fault, as the admin API names it, when known."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
