"""What the layers below the web layer load when imported: never aiohttp nor Prometheus's
client, not even through a package they use (pyproject.toml's import contracts see
direct imports only, and take the resource-server library as one opaque package)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BELOW_WEB = ("shared.domain", "shared.config", "shared.security", "shared.storage")
NEVER_LOADED = ("aiohttp", "aiohttp_jinja2", "prometheus_client")


def test_the_layers_below_the_web_layer_load_no_web_framework() -> None:
    script = textwrap.dedent(
        f"""
        import importlib, pkgutil, sys
        for name in {BELOW_WEB!r}:
            package = importlib.import_module(name)
            for module in pkgutil.walk_packages(package.__path__, name + "."):
                importlib.import_module(module.name)
        print(" ".join(sorted(m for m in {NEVER_LOADED!r} if m in sys.modules)))
        """
    )
    # A process of its own: this one has loaded aiohttp long ago.
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == []


def test_the_check_sees_a_web_framework_loaded() -> None:
    """The check above can fail: a web-layer module imported the same way is caught."""
    script = "import sys, shared.web.base_app; print('aiohttp' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "True"
