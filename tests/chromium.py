"""Headless Chromium (Debian's package) for the tests that must see a page, launched by
Playwright, which never downloads a browser of its own."""

from __future__ import annotations

import shutil

import pytest
from playwright.async_api import Browser, Playwright

# The machine has no network: without these flags Chromium keeps trying to reach Google's
# services (updates, sync, field trials) and floods the log with refused connections.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Nothing but this machine's loopback resolves, so no lookup ever leaves it: the
    # client's https://app.example.com fails at once, inside the browser.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]


async def launch_chromium(playwright: Playwright) -> Browser:
    """Headless Chromium; the test fails, saying how to install it, when it is missing."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "Chromium is not installed (no `chromium` on PATH). `make test` installs it "
            "from Debian's packages (`make chromium`, i.e. `apt-get install -y chromium`).",
            pytrace=False,
        )
    return await playwright.chromium.launch(
        executable_path=executable, headless=True, args=CHROMIUM_ARGS
    )
