"""Error replies as redis-py's exception classes, so callers written for redis-py (``except
RedisError``, ``except NoScriptError``) handle this layer's failures unchanged."""

from __future__ import annotations

from redis import exceptions

# The first word of an error reply names its kind (Redis's "error prefix").
_BY_PREFIX: dict[str, type[exceptions.RedisError]] = {
    "NOSCRIPT": exceptions.NoScriptError,
    "MOVED": exceptions.MovedError,
    "ASK": exceptions.AskError,
    "TRYAGAIN": exceptions.TryAgainError,
    "CLUSTERDOWN": exceptions.ClusterDownError,
    "CROSSSLOT": exceptions.ClusterCrossSlotError,
    "READONLY": exceptions.ReadOnlyError,
    "MASTERDOWN": exceptions.MasterDownError,
    "LOADING": exceptions.BusyLoadingError,
    "OOM": exceptions.OutOfMemoryError,
    "EXECABORT": exceptions.ExecAbortError,
    "NOPERM": exceptions.NoPermissionError,
}
_AUTH_PREFIXES = frozenset({"NOAUTH", "WRONGPASS"})


def from_reply(message: str) -> exceptions.RedisError:
    """The exception for an error reply's text, such as ``MOVED 3999 127.0.0.1:6381``."""
    prefix, _, rest = message.partition(" ")
    if prefix in _AUTH_PREFIXES:
        return exceptions.AuthenticationError(message)
    kind = _BY_PREFIX.get(prefix)
    if kind is None:
        return exceptions.ResponseError(message)
    # redis-py's redirection errors parse the text after the prefix ("3999 host:port").
    return kind(rest)


# Replies with which Redis says it cannot serve for now, though the command is sound: the
# typed ones above, and those redis-py has no class for (a script still running, the
# disk refusing writes, too few replicas for min-replicas-to-write).
_UNAVAILABLE_PREFIXES = frozenset(
    {"OOM", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "LOADING"}
    | {"BUSY", "MISCONF", "NOREPLICAS"}
)
_SCRIPT_ERROR = "Error running script"
_UNAVAILABLE_TYPES = (
    exceptions.ConnectionError,  # AuthenticationError and BusyLoadingError are ones
    exceptions.TimeoutError,
    exceptions.OutOfMemoryError,
    exceptions.ReadOnlyError,
    exceptions.ClusterError,  # ClusterDownError, MasterDownError, too many redirections
    exceptions.TryAgainError,
    exceptions.MovedError,  # redirections still not settled after the one retry
    exceptions.AskError,
)


def is_read_only(exc: BaseException) -> bool:
    """READONLY: the server is a replica now. Redis 6 wraps it in a script's error
    ("ERR Error running script ...: -READONLY You can't write ..."), Redis 7 does not."""
    if isinstance(exc, exceptions.ReadOnlyError):
        return True
    return isinstance(exc, exceptions.ResponseError) and "-READONLY " in str(exc)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says Redis cannot serve for now (away, slow, failing over, full,
    busy), which a caller may retry shortly, as opposed to a bug in the command."""
    if isinstance(exc, _UNAVAILABLE_TYPES) or is_read_only(exc):
        return True
    if not isinstance(exc, exceptions.ResponseError):
        return False
    message = str(exc)
    if _SCRIPT_ERROR in message:
        # Redis 6 wraps a refusal a script met ("...: -OOM command not allowed ...").
        return any(f"-{prefix} " in message for prefix in _UNAVAILABLE_PREFIXES)
    # A redis-py client (pub/sub, administration) keeps the prefix in the message.
    return message.split(" ", 1)[0] in _UNAVAILABLE_PREFIXES
