"""Error replies as redis-py's exception classes, so callers written for redis-py (``except
RedisError``, ``except NoScriptError``) handle this layer's failures unchanged."""

from __future__ import annotations

from redis import exceptions

# The first word of an error reply names its kind (Redis's "error prefix").
_BY_PREFIX: dict[str, type[exceptions.ResponseError]] = {
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


def unavailable(reason: str) -> exceptions.ConnectionError:
    return exceptions.ConnectionError(reason)
