"""What a grant handler receives and returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from shared.clients import Client
from shared.settings import Settings
from shared.tokens import IssuedTokens


@dataclass(slots=True, frozen=True)
class TokenRequest:
    """A token request whose client is authenticated and allowed the grant type."""

    client: Client
    params: dict[str, str]
    redis: Redis
    settings: Settings


GrantHandler = Callable[[TokenRequest], Awaitable[IssuedTokens]]
