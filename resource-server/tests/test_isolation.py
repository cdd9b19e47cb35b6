"""The library stands alone: it imports nothing of Tessera's server.

These tests run in the virtual environment that ``make test`` builds for the library
(resource-server/.venv), which holds the library, aiohttp, pyjwt, orjson and pytest only:
there Tessera's server and its dependencies cannot be imported at all, so an import of
them anywhere in the library fails the first test. (In Tessera's own environment the
second test fails by design: the server is installed there.)"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import tessera_resource_server

# Tessera's server, and what it depends on that the library must not.
SERVER_ONLY = ("shared", "services", "redis", "argon2", "prometheus_client")


def test_every_module_of_the_library_imports() -> None:
    prefix = f"{tessera_resource_server.__name__}."
    modules = pkgutil.walk_packages(tessera_resource_server.__path__, prefix)
    names = [module.name for module in modules]

    for name in names:
        importlib.import_module(name)

    assert {f"{prefix}jwt_verification", f"{prefix}middleware", f"{prefix}jwks"} <= set(names)


@pytest.mark.parametrize("name", SERVER_ONLY)
def test_tessera_s_server_and_its_dependencies_are_absent(name: str) -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(name)
