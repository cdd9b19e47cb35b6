"""The library's README: its sample is the real API, and its settings table names every
setting."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from tessera_resource_server import (
    RESOURCE_SERVER,
    ResourceServer,
    ResourceServerSettings,
    required_scopes,
)

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_the_sample_runs() -> None:
    sample = README.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}

    exec(compile(sample, "README.md", "exec"), namespace)  # noqa: S102 - our own README

    app = namespace["app"]
    assert isinstance(app[RESOURCE_SERVER], ResourceServer)
    assert required_scopes(namespace["list_notes"]) == ("notes:read",)
    assert required_scopes(namespace["healthz"]) == ()
    assert app[RESOURCE_SERVER].settings.jwks_uri == "https://id.example.com/jwks.json"


def test_the_settings_table_names_every_setting() -> None:
    table = README.split("## Settings", 1)[1]
    named = {
        name
        for first_cell in re.findall(r"^\| (`[^|]+`) \|", table, re.MULTILINE)
        for name in re.findall(r"`([a-z_]+)`", first_cell)
    }

    assert named == {spec.name for spec in dataclasses.fields(ResourceServerSettings)}
