"""Tessera's Lua scripts, one function each, named as its file ``lua/<name>.lua``.

A function's keyword parameters are the KEYS and ARGV its script's header names, in that
order (tests/test_lua_scripts.py holds them to it): a caller names every key and argument
and cannot pass one in another's place. A family's four keys are passed by the family id.
The header says what each one is and what the script answers; the script runs by its
SHA-1 (``script_runner``). Those taking ``queue_first`` send the commands it queues
before the script, in the same round trip, and again if Redis lacked the script: they
must be safe to repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from shared.storage import keys, script_runner
from shared.storage.script_files import Arg, ScriptFile, Value, load

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient

Queue = Callable[[Any], None]

_REVOKE_FAMILY = load("revoke_family")
_REDEEM_CODE = load("redeem_code")
_ISSUE_TOKENS = load("issue_tokens")
_ROTATE_REFRESH_TOKEN = load("rotate_refresh_token")
_CLAIM_INTERACTION = load("claim_interaction")
_TAKE_INTERACTION = load("take_interaction")
_KEEP_INTERACTION = load("keep_interaction")
_COUNT_IN_WINDOW = load("count_in_window")
_UNCOUNT_IN_WINDOW = load("uncount_in_window")
_RECORD_CONSENT = load("record_consent")
_TOUCH_CONSENT = load("touch_consent")
_FORGET_CONSENTED_SCOPE = load("forget_consented_scope")
_UPDATE_USER_CLAIMS = load("update_user_claims")
_REPLACE_RECORD = load("replace_record")


async def _run(redis: RedisClient, script: ScriptFile, /, **values: Value) -> Any:
    return await script_runner.run(redis, script.source, *script.arrange(values))


async def _run_after(
    redis: RedisClient, queue: Queue, script: ScriptFile, /, **values: Value
) -> Any:
    return await script_runner.run_after(redis, queue, script.source, *script.arrange(values))


# Grant families, codes and tokens


async def revoke_family(redis: RedisClient, /, *, family: str, tombstone_ttl: int) -> int:
    return int(
        await _run(
            redis, _REVOKE_FAMILY, family=keys.family_keys(family), tombstone_ttl=tombstone_ttl
        )
    )


async def redeem_code(
    redis: RedisClient, /, *, code: str, family: str, tombstone_ttl: int
) -> tuple[str, str] | None:
    """(``fresh`` or ``replayed``, the code's record), or None."""
    found = await _run(
        redis,
        _REDEEM_CODE,
        code=code,
        family=keys.family_keys(family),
        tombstone_ttl=tombstone_ttl,
    )
    return (found[0], found[1]) if found else None


async def issue_tokens(
    redis: RedisClient,
    queue_first: Queue,
    /,
    *,
    family: str,
    token_keys: Sequence[str],
    token_values: Sequence[Arg],
) -> bool:
    """False when the family is revoked."""
    stored = await _run_after(
        redis,
        queue_first,
        _ISSUE_TOKENS,
        family=keys.family_keys(family),
        token_keys=token_keys,
        token_values=token_values,
    )
    return bool(stored)


async def rotate_refresh_token(
    redis: RedisClient,
    queue_first: Queue,
    /,
    *,
    refresh_token: str,
    family: str,
    token_keys: Sequence[str],
    client_id: str,
    grace_ms: int,
    tombstone_ttl: int,
    token_values: Sequence[Arg],
) -> str:
    outcome: str = await _run_after(
        redis,
        queue_first,
        _ROTATE_REFRESH_TOKEN,
        refresh_token=refresh_token,
        family=keys.family_keys(family),
        token_keys=token_keys,
        client_id=client_id,
        grace_ms=grace_ms,
        tombstone_ttl=tombstone_ttl,
        token_values=token_values,
    )
    return outcome


# Pending authorization requests


async def claim_interaction(redis: RedisClient, /, *, interaction: str, binding: str) -> bool:
    return bool(await _run(redis, _CLAIM_INTERACTION, interaction=interaction, binding=binding))


async def take_interaction(redis: RedisClient, /, *, interaction: str, binding: str) -> str | None:
    request: str | None = await _run(
        redis, _TAKE_INTERACTION, interaction=interaction, binding=binding
    )
    return request


async def keep_interaction(
    redis: RedisClient, /, *, interaction: str, binding: str, lifetime_ms: int, request: str
) -> bool:
    kept = await _run(
        redis,
        _KEEP_INTERACTION,
        interaction=interaction,
        binding=binding,
        lifetime_ms=lifetime_ms,
        request=request,
    )
    return bool(kept)


# Rate limits


async def count_in_window(
    redis: RedisClient, /, *, counter: str, window_ms: int
) -> tuple[int, int]:
    """(the count, milliseconds left in the window)."""
    count, left_ms = await _run(redis, _COUNT_IN_WINDOW, counter=counter, window_ms=window_ms)
    return int(count), int(left_ms)


async def uncount_in_window(redis: RedisClient, /, *, counter: str) -> int | None:
    left: int | None = await _run(redis, _UNCOUNT_IN_WINDOW, counter=counter)
    return left


# Remembered consent


async def record_consent(
    redis: RedisClient,
    queue_first: Queue,
    /,
    *,
    consents: str,
    client_id: str,
    shown: bytes,
    approved: bytes,
    now: int,
) -> int:
    return int(
        await _run_after(
            redis,
            queue_first,
            _RECORD_CONSENT,
            consents=consents,
            client_id=client_id,
            shown=shown,
            approved=approved,
            now=now,
        )
    )


async def touch_consent(redis: RedisClient, /, *, consents: str, client_id: str, now: int) -> bool:
    return bool(await _run(redis, _TOUCH_CONSENT, consents=consents, client_id=client_id, now=now))


async def forget_consented_scope(redis: RedisClient, /, *, consents: str, scope: str) -> int:
    return int(await _run(redis, _FORGET_CONSENTED_SCOPE, consents=consents, scope=scope))


# People


async def update_user_claims(
    redis: RedisClient, /, *, user: str, changes: bytes, updated_at: int
) -> str | None:
    """The person's record as stored now; None when there is no such person."""
    stored: str | None = await _run(
        redis, _UPDATE_USER_CLAIMS, user=user, changes=changes, updated_at=updated_at
    )
    return stored


# Records an administrator changes


async def replace_record(
    redis: RedisClient, /, *, record: str, expected: str | bytes, replaced: bytes
) -> bool:
    """Whether ``replaced`` was stored, ``record`` having held ``expected`` still."""
    return bool(
        await _run(redis, _REPLACE_RECORD, record=record, expected=expected, replaced=replaced)
    )
