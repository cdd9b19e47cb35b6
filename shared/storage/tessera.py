"""What a service's token code works with, as one object: its settings, its Redis client
and its JWT signing keys. Built once per application (``shared.web.base_app``) and passed
as one argument where a function needs more than Redis; code that needs only Redis, such
as token management, which the CLI runs without settings, takes the client alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.config.settings import Settings
from shared.security.signing_keys import KeySet

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient


@dataclass(frozen=True, slots=True)
class Tessera:
    settings: Settings
    # A single Redis, a Sentinel-managed master, or a Redis Cluster (shared.storage.redis_store).
    redis: RedisClient
    # The keys that sign JWT access tokens (token service) or verify them (introspection);
    # None when TESSERA_SIGNING_KEYS is not set.
    key_set: KeySet | None
