"""The Lua scripts' files (shared/storage/lua/): every header in its one format, and every
script run through a function whose keyword parameters are the KEYS and ARGV its header
names, in its order, so the documentation cannot drift from the calls."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from shared.storage import script_files, scripts

LUA = Path(script_files.__file__).with_name("lua")


def _functions() -> dict[str, Callable[..., object]]:
    return {
        name: function
        for name, function in vars(scripts).items()
        if inspect.iscoroutinefunction(function) and not name.startswith("_")
    }


def test_every_script_has_one_function_and_every_function_one_script() -> None:
    assert sorted(_functions()) == script_files.names() != []


@pytest.mark.parametrize("name", script_files.names())
def test_a_scripts_function_takes_the_keys_and_args_its_header_names(name: str) -> None:
    script = script_files.load(name)
    parameters = inspect.signature(_functions()[name]).parameters.values()
    named = [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]
    plumbing = [p.name for p in parameters if p.kind is inspect.Parameter.POSITIONAL_ONLY]
    assert named == script.names
    assert plumbing in (["redis"], ["redis", "queue_first"])
    assert len(parameters) == len(named) + len(plumbing)


@pytest.mark.parametrize("name", script_files.names())
def test_redis_is_sent_the_script_with_its_includes_and_without_its_header(name: str) -> None:
    text = (LUA / f"{name}.lua").read_text()
    source = script_files.load(name).source
    assert source.strip() and not source.startswith("--")
    assert "-- include:" not in source
    for included in re.findall(r"^-- include: (\w+)$", text, re.MULTILINE):
        assert f"local function {included}(" in source


def test_every_shared_function_is_included_somewhere() -> None:
    shared = {path.stem for path in (LUA / "include").glob("*.lua")}
    included = {
        found
        for path in LUA.glob("*.lua")
        for found in re.findall(r"^-- include: (\w+)$", path.read_text(), re.MULTILINE)
    }
    assert shared == included == {"revoke_family", "store_tokens"}
    for name in shared:
        assert script_files.included(name).startswith(f"local function {name}(")


async def test_every_script_compiles_in_redis(redis: Redis) -> None:
    for name in script_files.names():
        assert re.fullmatch(
            r"[0-9a-f]{40}", await redis.script_load(script_files.load(name).source)
        )


# The header's format, on scripts written for the test.

GOOD = """\
-- sample: a script of the test.
-- Enforces: RFC 6749 §4.1.2, a code is used once
--
-- Why it is.
--
-- KEYS[1]     code    the code
-- KEYS[2..5]  family  the family's keys,
--                     four of them
-- KEYS[6..]   tokens  the tokens
-- ARGV[1]     ttl     seconds
-- ARGV[2..]   values  per token
-- Returns: what it answers,
--   on two lines.

-- include: shared

return 1
"""


def _parse(text: str) -> script_files.ScriptFile:
    return script_files.parse("sample", text, lambda name: f"local function {name}()\nend\n")


def test_a_header_names_each_key_and_argument_and_groups_of_them() -> None:
    script = _parse(GOOD)
    assert script.names == ["code", "family", "tokens", "ttl", "values"]
    assert [(p.first, p.count) for p in script.keys] == [(1, 1), (2, 4), (6, None)]
    assert [(p.first, p.count) for p in script.args] == [(1, 1), (2, None)]
    assert script.source == "local function shared()\nend\n\nreturn 1\n"
    none = GOOD.replace("-- ARGV[1]     ttl     seconds\n-- ARGV[2..]   values  per token\n", "")
    assert _parse(none.replace("-- Returns:", "-- ARGV: none\n-- Returns:")).args == ()


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (("-- sample: ", "-- other: "), "starts '-- sample: '"),
        (("-- Enforces: RFC 6749 §4.1.2, a", "-- Enforces: the RFC, a"), "Enforces"),
        (("-- Enforces:", "--\n-- Enforces:"), "Enforces"),
        (("-- Returns: what it answers,", "-- Answers: what,"), "Returns"),
        (("--   on two lines.", "--   on two lines.\n-- KEYS[7]  more  late"), "Returns"),
        (("-- KEYS[2..5]  family", "-- KEYS[3..5]  family"), r"KEYS\[2\] comes next"),
        (("-- KEYS[2..5]  family", "-- KEYS[2..2]  family"), "ends after it starts"),
        (("-- ARGV[1]     ttl ", "-- KEYS[7]     ttl "), r"KEYS\[6\] comes next"),
        (("-- ARGV[2..]   values", "-- ARGV[2..]   ttl   "), "given twice"),
        (("-- ARGV[1]     ttl     seconds\n", ""), r"ARGV\[1\] comes next"),
        (("-- ARGV[1]     ttl     seconds\n-- ARGV[2..]   values  per token\n", ""), "ARGV"),
        (("-- KEYS[6..]   tokens  the tokens\n", "-- KEYS[6..]   tokens\n"), "comes next"),
        (("the code\n", "the code\n-- why\n"), r"ARGV\[1\] comes next, not '-- why'"),
        (("-- Why it is.", "Why it is."), "before the first blank line"),
    ],
)
def test_a_header_out_of_its_format_is_refused(change: tuple[str, str], refusal: str) -> None:
    assert change[0] in GOOD
    with pytest.raises(ValueError, match=refusal):
        _parse(GOOD.replace(*change, 1))


def test_the_values_go_where_the_header_puts_them() -> None:
    script = _parse(GOOD)
    arranged = script.arrange(
        {"values": ["r", 60, 1], "ttl": 30, "tokens": ["t"], "family": list("abcd"), "code": "c"}
    )
    assert arranged == (["c", "a", "b", "c", "d", "t"], [30, "r", 60, 1])


@pytest.mark.parametrize(
    "values",
    [
        {"code": "c", "family": list("abcd"), "tokens": [], "ttl": 30},  # one missing
        {"code": "c", "family": list("abcd"), "tokens": [], "ttl": 30, "values": [], "x": 1},
        {"code": "c", "family": list("abc"), "tokens": [], "ttl": 30, "values": []},
        {"code": ["c"], "family": list("abcd"), "tokens": [], "ttl": 30, "values": []},
        {"code": "c", "family": list("abcd"), "tokens": "t", "ttl": 30, "values": []},
    ],
)
def test_values_not_as_the_header_names_them_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(TypeError, match="sample"):
        _parse(GOOD).arrange(values)  # type: ignore[arg-type]
