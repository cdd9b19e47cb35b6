"""The Lua scripts, one file each in ``lua/``, read once, with their KEYS and ARGV by name.

A script is ``lua/<name>.lua``. Its header, the comment lines before the first blank
line, says what it takes and answers, in one format:

    -- <name>: <what it does, in one line>
    -- Enforces: RFC <number> §<section>, <the rule>   (where it enforces an RFC's rule)
    --
    -- <why, in as many lines as it takes>
    --
    -- KEYS[1]     <name>  <one key>
    -- KEYS[2..5]  <name>  <a group of keys, always this many>
    -- KEYS[6..]   <name>  <any number of keys: the last parameter only>
    -- ARGV[1]     <name>  <one argument>                (or the line "-- ARGV: none")
    -- Returns: <the answer>

A line of ``--`` and two or more spaces continues the entry above it. ``scripts`` runs each
script through a function whose keyword parameters are these names in this order (a test
holds them to it), and ``ScriptFile.arrange`` puts each value where the header says, so a
caller names every key and argument and the header cannot drift from the code.

A Lua function several scripts share is ``lua/include/<name>.lua``, whose header starts
``-- <name>(<parameters>): ``; a script's line ``-- include: <name>`` is replaced by it
when the script is read. Redis is sent the script without its header.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

Arg = str | bytes | int | float
# A parameter's value: one key or argument, or a group of them.
Value = Arg | Sequence[Arg]
_ONE = (str, bytes, int, float)  # Arg's types, as isinstance takes them fastest

_FOLDER = Path(__file__).with_name("lua")

_PARAMETER = re.compile(r"-- (KEYS|ARGV)\[(\d+)(?:\.\.(\d*))?\] +([a-z][a-z0-9_]*) +\S")
_CONTINUED = re.compile(r"--  +\S")
_ENFORCES = re.compile(r"-- Enforces: RFC \d+ §\d+(\.\d+)*, \S")
_INCLUDE = re.compile(r"^-- include: ([a-z][a-z0-9_]*)$", re.MULTILINE)
_SIGNATURE = re.compile(r"-- ([a-z][a-z0-9_]*)\(([a-z0-9_, ]*)\): \S")


@dataclass(frozen=True, slots=True)
class Parameter:
    """A name the header gives to KEYS[first] (or ARGV[first]) and, for a group, the
    ``count - 1`` after it; ``count`` None: to the end."""

    name: str
    first: int
    count: int | None


@dataclass(frozen=True, slots=True)
class ScriptFile:
    name: str
    keys: tuple[Parameter, ...]
    args: tuple[Parameter, ...]
    source: str  # what Redis runs: the includes in, the header out

    @property
    def names(self) -> list[str]:
        """The parameters' names, KEYS first, as the script's function takes them."""
        return [parameter.name for parameter in (*self.keys, *self.args)]

    def arrange(self, values: Mapping[str, Value]) -> tuple[list[Arg], list[Arg]]:
        """KEYS and ARGV, each value where the header puts its name. TypeError when the
        names are not the header's, or a group has not as many values as it names."""
        # As many values as names, and a value for every name: the same names.
        if len(values) == len(self.keys) + len(self.args):
            try:
                return self._flat(self.keys, values), self._flat(self.args, values)
            except KeyError:
                pass
        raise TypeError(f"{self.name} takes {self.names}, not {list(values)}")

    def _flat(self, parameters: tuple[Parameter, ...], values: Mapping[str, Value]) -> list[Arg]:
        flat: list[Arg] = []
        for parameter in parameters:
            value, count = values[parameter.name], parameter.count
            if isinstance(value, _ONE):
                if count != 1:
                    raise TypeError(f"{self.name}: {parameter.name} is a group of values")
                flat.append(value)
            elif count == 1 or (count is not None and len(value) != count):
                raise TypeError(f"{self.name}: {parameter.name} takes {count} value(s)")
            else:
                flat.extend(value)
        return flat


@functools.cache
def load(name: str) -> ScriptFile:
    """The script ``lua/<name>.lua``, read once."""
    return parse(name, (_FOLDER / f"{name}.lua").read_text(encoding="utf-8"))


def names() -> list[str]:
    """Every script's name."""
    return sorted(
        entry.name.removesuffix(".lua")
        for entry in _FOLDER.iterdir()
        if entry.is_file() and entry.name.endswith(".lua")
    )


@functools.cache
def included(name: str) -> str:
    """The shared function ``lua/include/<name>.lua``, without its header."""
    text = (_FOLDER / "include" / f"{name}.lua").read_text(encoding="utf-8")
    header, body = _split(f"include/{name}.lua", text)
    signature = _SIGNATURE.match(header[0])
    if signature is None or signature[1] != name:
        raise ValueError(f"include/{name}.lua: the header starts '-- {name}(<parameters>): '")
    if f"\nlocal function {name}({signature[2]})\n" not in f"\n{body}":
        raise ValueError(f"include/{name}.lua: defines no 'local function {name}({signature[2]})'")
    _check_returns(f"include/{name}.lua", header[1:])
    return body


def parse(name: str, text: str, include: Callable[[str], str] = included) -> ScriptFile:
    """The script ``name`` read from ``text``; ValueError when its header is not in the
    format above."""
    where = f"{name}.lua"
    header, body = _split(where, text)
    if not header[0].startswith(f"-- {name}: "):
        raise ValueError(f"{where}: the header starts '-- {name}: '")
    for number, line in enumerate(header):
        if line.startswith("-- Enforces:") and (number != 1 or not _ENFORCES.match(line)):
            raise ValueError(f"{where}: 'Enforces: RFC <n> §<section>, <rule>' is line 2")
    start = next((i for i, line in enumerate(header) if line.startswith("-- KEYS")), None)
    if start is None:
        raise ValueError(f"{where}: the header names no KEYS")
    keys, args = _parameters(where, header[start:])
    source = _INCLUDE.sub(lambda found: include(found[1]).rstrip("\n"), body)
    return ScriptFile(name, keys, args, source)


def _split(where: str, text: str) -> tuple[list[str], str]:
    """The header's lines and the rest."""
    head, blank, body = text.partition("\n\n")
    header = head.splitlines()
    if not blank or not header or not all(line.startswith("--") for line in header):
        raise ValueError(f"{where}: the header is the comment lines before the first blank line")
    return header, body.lstrip("\n")


def _parameters(
    where: str, block: list[str]
) -> tuple[tuple[Parameter, ...], tuple[Parameter, ...]]:
    """The KEYS and ARGV the header's last entries name: KEYS, then ARGV, then Returns."""
    entries = [line for line in block[: _check_returns(where, block)] if not _CONTINUED.match(line)]
    argv = next(
        (i for i, line in enumerate(entries) if not line.startswith("-- KEYS")), len(entries)
    )
    keys, args = _listed(where, "KEYS", entries[:argv]), _listed(where, "ARGV", entries[argv:])
    names = [parameter.name for parameter in (*keys, *args)]
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: a name is given twice: {names}")
    return keys, args


def _listed(where: str, kind: str, lines: list[str]) -> tuple[Parameter, ...]:
    """The parameters of ``kind`` (KEYS or ARGV), each starting where the last ended."""
    if kind == "ARGV" and lines == ["-- ARGV: none"]:
        return ()
    if not lines:
        raise ValueError(f"{where}: the header names the {kind} (ARGV may be '-- ARGV: none')")
    listed: list[Parameter] = []
    for line in lines:
        found = _PARAMETER.match(line)
        expected = listed[-1].first + (listed[-1].count or 0) if listed else 1
        if (
            found is None
            or found[1] != kind
            or int(found[2]) != expected
            or (listed and listed[-1].count is None)
        ):
            raise ValueError(f"{where}: {kind}[{expected}] comes next, not {line!r}")
        first, last = int(found[2]), found[3]
        if last is None:
            count: int | None = 1
        elif last == "":
            count = None  # to the end
        elif int(last) > first:
            count = int(last) - first + 1
        else:
            raise ValueError(f"{where}: a group of {kind} ends after it starts: {line!r}")
        listed.append(Parameter(found[4], first, count))
    return tuple(listed)


def _check_returns(where: str, lines: list[str]) -> int:
    """The index of the header's 'Returns:' line, which only its own continuation follows."""
    returns = [i for i, line in enumerate(lines) if line.startswith("-- Returns: ")]
    if len(returns) != 1 or not all(_CONTINUED.match(line) for line in lines[returns[0] + 1 :]):
        raise ValueError(f"{where}: the header ends with one '-- Returns: ' entry")
    return returns[0]
