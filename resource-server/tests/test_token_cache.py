"""The cache of active introspection answers (RFC 7662 §4): bounded, keyed by the
token's digest, and never past the token's exp."""

from __future__ import annotations

import time

from tessera_resource_server import AccessToken
from tessera_resource_server.token_cache import TokenCache


def token_info(exp: int | None) -> AccessToken:
    return AccessToken.from_claims({"active": True, "sub": "s", "exp": exp}, "introspection")


def test_the_cache_is_bounded_keyed_by_digest_and_never_outlives_exp() -> None:
    cache = TokenCache(max_seconds=60, max_entries=2)
    later = int(time.time()) + 3600
    for token in ("one", "two", "three"):
        cache.put(token, token_info(later))

    assert len(cache) == 2
    assert cache.get("one") is None  # the least recently used went
    assert cache.get("three") is not None
    assert not {"one", "two", "three"} & set(cache._entries)  # digests, not tokens

    cache.put("expired", token_info(int(time.time()) - 1))
    assert cache.get("expired") is None
    assert TokenCache(max_seconds=0, max_entries=10).get("one") is None
