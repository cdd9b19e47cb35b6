"""Driving the pages in a real browser: headless Chromium (Debian's package) through
Playwright, for the test modules that need one (``tests/test_browser.py``, the OpenID
Connect sign-in). A pytest plugin (``tests/conftest.py``): its fixtures are everyone's.

One browser serves a whole module, so the module's tests and async fixtures share one
event loop (pytest-asyncio ``loop_scope="module"``; the module sets ``pytestmark``); each
test gets a fresh browser context, so no cookie leaks from one test to the next. The
conftest's ``redis`` and ``http`` live on a per-test loop, and a connection cannot cross
loops: such a module uses ``browser_redis`` and ``browser_http`` instead.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlencode

import aiohttp
import pytest_asyncio
from playwright.async_api import (
    Browser,
    Dialog,
    Page,
    Playwright,
    ViewportSize,
    async_playwright,
    expect,
)
from redis.asyncio import Redis

from tests.chromium import launch_chromium
from tests.records import PASSWORD, REDIRECT_URI
from tests.replies import query_of
from tests.stack import Stack, connect_single_server

DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)

# Playwright's auto-waiting timeouts, in milliseconds: generous for a loaded CI machine,
# short enough that a broken page fails in seconds rather than minutes.
TIMEOUT_MS = 10_000
expect.set_options(timeout=TIMEOUT_MS)
# Chromium's page for a navigation that failed (the client app is not on this machine).
CHROME_ERROR_PAGE = re.compile(r"^chrome-error://")

# --- fixtures -----------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as p:
        yield p


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(playwright: Playwright) -> AsyncIterator[Browser]:
    browser = await launch_chromium(playwright)
    yield browser
    await browser.close()


@pytest_asyncio.fixture(loop_scope="module")
async def browser_redis(stack: Stack) -> AsyncIterator[Redis]:
    client = connect_single_server(stack.redis_url)
    yield client
    await client.aclose()


@pytest_asyncio.fixture(loop_scope="module")
async def browser_http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Tab:
    """One browser tab in a context of its own, with what it saw recorded."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []


@asynccontextmanager
async def open_tab(
    browser: Browser, viewport: ViewportSize = DESKTOP, *, phone: bool = False
) -> AsyncIterator[Tab]:
    context = await browser.new_context(
        viewport=viewport,
        is_mobile=phone,
        has_touch=phone,
        device_scale_factor=1,
    )
    try:
        context.set_default_timeout(TIMEOUT_MS)
        page = await context.new_page()
        tab = Tab(page)

        async def on_dialog(dialog: Dialog) -> None:
            tab.dialogs.append(f"{dialog.type}: {dialog.message}")
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        yield tab
    finally:
        await context.close()


@pytest_asyncio.fixture(loop_scope="module")
async def tab(browser: Browser) -> AsyncIterator[Tab]:
    async with open_tab(browser) as t:
        yield t


# --- helpers ------------------------------------------------------------------------------


def authorize_url(stack: Stack, params: dict[str, str]) -> str:
    return f"{stack.authorize}/authorize?{urlencode(params)}"


async def back_at_client(
    page: Page, stack: Stack, submit: Callable[[], Awaitable[None]]
) -> dict[str, str]:
    """Submit the approval page with ``submit`` and follow the browser back to the client;
    returns the query of the client's redirect URI as the browser requested it.

    The client app is not on this machine, so the browser's request for its redirect URI
    fails (name not resolved) and that is fine: the URL is what the client would receive.
    Why not ``page.route`` that URL and fulfil it? Playwright never routes the hops of a
    redirect in Chromium (it continues every request that has ``redirectedFrom``), so
    such a route is not called for the 303 from /consent.
    """
    async with page.expect_request(lambda r: r.url.startswith(REDIRECT_URI + "?")) as info:
        await submit()
    request = await info.value
    assert request.is_navigation_request()
    assert request.frame == page.main_frame
    assert request.method == "GET"
    # The browser got there by following the approval form's 303 (RFC 9700 §4.12).
    hop = request.redirected_from
    assert hop is not None
    assert (hop.method, hop.url) == ("POST", f"{stack.authorize}/consent")
    answer = await hop.response()
    assert answer is not None
    assert answer.status == 303
    assert await answer.header_value("location") == request.url
    return query_of(request.url)


async def approve_and_land(page: Page, stack: Stack) -> dict[str, str]:
    """Approve, and wait until the browser has given up on the unreachable client (its
    error page is committed), so the next navigation is not cut short by that one."""
    back = await back_at_client(page, stack, page.get_by_role("button", name="Approve").click)
    await client_unreachable(page)
    return back


async def client_unreachable(page: Page) -> None:
    """Wait until the browser shows its error page for the unreachable client. Polled:
    ``wait_for_url`` fails with the navigation's own error (name not resolved) when it
    starts waiting before Chromium has committed its error page."""
    await expect(page).to_have_url(CHROME_ERROR_PAGE)


async def open_login_page(page: Page, stack: Stack, params: dict[str, str]) -> None:
    await page.goto(authorize_url(stack, params))
    await page.wait_for_url(f"{stack.authorize}/login?interaction=*")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


async def sign_in(page: Page, username: str, password: str = PASSWORD) -> None:
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
