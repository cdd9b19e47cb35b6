"""Adding a resource owner (shared/storage/users.py): the password is stored as argon2id
(RFC 9106), hashed off the event loop, which it would otherwise hold for a tenth of a
second (DESIGN: nothing blocks the event loop)."""

from __future__ import annotations

import threading

import orjson
import pytest
from redis.asyncio import Redis

from shared.domain.password_hashing import PasswordHashing
from shared.security import crypto
from shared.storage import keys, users
from tests.records import PASSWORD, unique
from tests.stack import TEST_PASSWORD_HASHING


async def test_a_new_users_password_is_hashed_off_the_event_loop(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed_in: list[int] = []
    hash_password = crypto.hash_password

    def recording_thread(password: str, hashing: PasswordHashing) -> str:
        hashed_in.append(threading.get_ident())
        return hash_password(password, hashing)

    monkeypatch.setattr(crypto, "hash_password", recording_thread)

    user = await users.add(redis, unique("frank"), PASSWORD, TEST_PASSWORD_HASHING)

    assert len(hashed_in) == 1
    assert hashed_in[0] != threading.get_ident()  # the event loop's thread
    stored = orjson.loads(await redis.get(keys.user(user.username)) or "{}")
    assert stored["password_hash"] == user.password_hash
    assert user.password_hash.startswith("$argon2id$")
    assert crypto.check_password(user.password_hash, PASSWORD)
