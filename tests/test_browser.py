"""The login and approval pages in a real browser: headless Chromium (Debian's package)
driven by Playwright, against the three services running as separate processes.

What only a browser can show: the forms work with a mouse and with the keyboard alone
(focus visible), the approval and connected-applications pages escape what a client
registered (RFC 6749 §10.14, no script runs), no page can be framed (RFC 6749
§10.13), and a single-page app on another origin runs the code flow with fetch() (CORS),
while one on an origin no client registered is blocked. The test also saves screenshots
of every page at desktop and phone size into ``test-artifacts/screenshots/``.

One browser serves the whole module, so the module's tests and async fixtures share one
event loop (pytest-asyncio ``loop_scope="module"``); each test gets a fresh browser
context, so no cookie leaks from one test to the next.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import (
    Browser,
    Dialog,
    Page,
    Playwright,
    Route,
    ViewportSize,
    async_playwright,
    expect,
)
from redis.asyncio import Redis

from devtools.local_processes import free_port
from services.authorize.connected_apps import REVOKED
from services.authorize.login import LOGIN_FAILED
from shared.storage import scopes
from tests.assertions import assert_access_denied
from tests.chromium import launch_chromium
from tests.command_line import tessera
from tests.flows import code_request, exchange, is_active, new_verifier, s256
from tests.records import (
    PASSWORD,
    REDIRECT_URI,
    Registered,
    make_client,
    make_resource_server,
    make_scope,
    make_setup,
    make_user,
    unique,
)
from tests.replies import query_of
from tests.secrets_ledger import remember_secrets
from tests.stack import Stack, connect_single_server
from tests.waiting import until_origin

pytestmark = pytest.mark.asyncio(loop_scope="module")

SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"

DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)

# Playwright's auto-waiting timeouts, in milliseconds: generous for a loaded CI machine,
# short enough that a broken page fails in seconds rather than minutes.
TIMEOUT_MS = 10_000
expect.set_options(timeout=TIMEOUT_MS)

XSS_IMG = '<img src=x onerror="window.__xss=1">'
XSS_SCRIPT = "<script>window.__xss=1</script>"

# A client's logo (its logo_uri), served to the browser by a route: nothing leaves the
# machine. An SVG in an img element runs no script, whatever it holds.
LOGO_URI = "https://cdn.example.com/calendar-sync/logo.svg"
# Chromium's page for a navigation that failed (the client app is not on this machine).
CHROME_ERROR_PAGE = re.compile(r"^chrome-error://")
LOGO_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96" viewBox="0 0 96 96">'
    '<rect width="96" height="96" rx="18" fill="#2457d6"/>'
    '<rect x="20" y="26" width="56" height="48" rx="6" fill="#fff"/>'
    '<rect x="20" y="26" width="56" height="12" fill="#9db6f5"/>'
    "</svg>"
)


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


# The conftest's `redis` and `http` fixtures live on a per-test event loop; these tests run
# on the module's loop (the browser's), and a Redis or aiohttp connection cannot cross loops.
@pytest_asyncio.fixture(loop_scope="module")
async def redis(stack: Stack) -> AsyncIterator[Redis]:
    client = connect_single_server(stack.redis_url)
    yield client
    await client.aclose()


@pytest_asyncio.fixture(loop_scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
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


async def serve_logo(page: Page) -> None:
    async def logo(route: Route) -> None:
        await route.fulfill(status=200, content_type="image/svg+xml", body=LOGO_SVG)

    await page.context.route(LOGO_URI, logo)


async def focus_is_visible(page: Page) -> None:
    """The focused element draws the focus ring of tessera.css (WCAG 2.4.7)."""
    outline = await page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, parseFloat(s.outlineWidth)]; }"
    )
    assert outline[0] != "none" and outline[1] >= 2, outline


async def no_horizontal_scroll(page: Page) -> None:
    """Nothing sticks out sideways: the page fits the viewport's width."""
    widths = await page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"page is {widths[0]}px wide in a {widths[1]}px viewport"


async def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    return path


# --- tests --------------------------------------------------------------------------------


async def test_approve_in_the_browser_with_pkce_and_one_scope_unticked(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, tab: Tab
) -> None:
    page = tab.page
    read = await make_scope(redis, "Read your calendar")
    write = await make_scope(redis, "Change your calendar")
    user = await make_user(redis)
    name = unique("Calendar")
    client = await make_client(
        redis,
        [read, write],
        client_type="public",
        name=name,
        version="2.1",
        description="Keeps your diary in order.",
    )
    verifier = new_verifier()
    params = code_request(
        client, f"{read} {write}", code_challenge=s256(verifier), code_challenge_method="S256"
    )

    await open_login_page(page, stack, params)
    # Every field has a label a screen reader announces, and the names the form posts.
    username, password = page.get_by_label("Username"), page.get_by_label("Password")
    await expect(username).to_have_attribute("name", "username")
    await expect(password).to_have_attribute("name", "password")
    await expect(password).to_have_attribute("type", "password")
    await expect(page.get_by_text(f"to continue to {name} (2.1)")).to_be_visible()
    await sign_in(page, user)

    await page.wait_for_url(f"{stack.authorize}/consent?interaction=*")
    await expect(page.get_by_text(f"{name} (2.1) is requesting access")).to_be_visible()
    await expect(page.get_by_text("Keeps your diary in order.")).to_be_visible()
    await expect(page.get_by_text(f"Signed in as {user}")).to_be_visible()
    boxes = page.get_by_role("checkbox")
    await expect(boxes).to_have_count(2)
    for scope, description in ((read, "Read your calendar"), (write, "Change your calendar")):
        box = page.get_by_role("checkbox", name=scope)
        await expect(box).to_be_checked()
        await expect(box).to_have_attribute("value", scope)
        await expect(page.get_by_text(description)).to_be_visible()
    await page.get_by_role("checkbox", name=write).uncheck()
    await expect(page.get_by_role("checkbox", name=write)).not_to_be_checked()
    back = await back_at_client(page, stack, page.get_by_role("button", name="Approve").click)
    assert set(back) == {"code", "state", "iss"}, back
    assert back["state"] == params["state"]
    assert back["iss"] == stack.issuer  # RFC 9207
    reply = await exchange(http, stack, client, back["code"], auth="none", code_verifier=verifier)
    assert reply.status == 200, reply.body
    assert reply.body["scope"] == read
    assert reply.body["token_type"] == "Bearer"
    assert tab.dialogs == []


async def test_keyboard_only_sign_in_and_approval(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, tab: Tab
) -> None:
    page, keyboard = tab.page, tab.page.keyboard
    read, write = await make_scope(redis), await make_scope(redis, "Write things")
    user = await make_user(redis)
    client = await make_client(redis, [read, write], client_type="public")
    verifier = new_verifier()
    params = code_request(
        client, f"{read} {write}", code_challenge=s256(verifier), code_challenge_method="S256"
    )

    await open_login_page(page, stack, params)
    # The username field has the focus as the page opens (autofocus).
    await expect(page.get_by_label("Username")).to_be_focused()
    await keyboard.type(user)
    await keyboard.press("Tab")
    await expect(page.get_by_label("Password")).to_be_focused()
    await keyboard.type(PASSWORD)
    await keyboard.press("Enter")

    await page.wait_for_url(f"{stack.authorize}/consent?interaction=*")
    # Tab order: each scope's checkbox, then Deny, then Approve.
    await keyboard.press("Tab")
    await expect(page.get_by_role("checkbox", name=read)).to_be_focused()
    await keyboard.press("Tab")
    await expect(page.get_by_role("checkbox", name=write)).to_be_focused()
    await keyboard.press("Space")
    await expect(page.get_by_role("checkbox", name=write)).not_to_be_checked()
    await keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Deny")).to_be_focused()
    await keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Approve")).to_be_focused()

    await focus_is_visible(page)

    back = await back_at_client(page, stack, lambda: keyboard.press("Enter"))
    assert back["state"] == params["state"]
    assert "error" not in back
    reply = await exchange(http, stack, client, back["code"], auth="none", code_verifier=verifier)
    assert reply.status == 200, reply.body
    assert reply.body["scope"] == read
    await client_unreachable(page)

    # Then, by keyboard still, the person removes the app's access again.
    api = await make_resource_server(redis, [read, write])
    assert await is_active(http, stack, api, reply.body["access_token"])
    await page.goto(f"{stack.authorize}/connected-apps")
    await keyboard.press("Tab")
    remove = page.get_by_role("button", name=f"Remove access of {client.client.name}")
    await expect(remove).to_be_focused()
    await focus_is_visible(page)
    await keyboard.press("Enter")
    await page.wait_for_url(f"{stack.authorize}/connected-apps?revoked=1")
    await expect(page.get_by_role("status")).to_have_text(REVOKED)
    await expect(page.get_by_role("button", name="Remove access")).to_have_count(0)
    assert not await is_active(http, stack, api, reply.body["access_token"])


async def test_wrong_password_shows_an_alert(stack: Stack, redis: Redis, tab: Tab) -> None:
    page = tab.page
    s = await make_setup(redis)

    await open_login_page(page, stack, code_request(s.client, s.scope))
    login_url = page.url
    await sign_in(page, s.user, "not the password")

    alert = page.get_by_role("alert")
    await expect(alert).to_have_text(LOGIN_FAILED)
    await expect(alert).to_be_visible()
    # Still on the sign-in form, and it still works: the right password goes through.
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await expect(page.get_by_label("Password")).to_have_value("")
    assert page.url == f"{stack.authorize}/login"  # the form's answer, no redirect
    await sign_in(page, s.user)
    await page.wait_for_url(f"{stack.authorize}/consent?interaction=*")
    assert query_of(page.url)["interaction"] == query_of(login_url)["interaction"]
    await expect(page.get_by_role("alert")).to_have_count(0)


async def test_a_limited_sign_in_says_when_to_try_again_and_unlock_lifts_it(
    stack: Stack, redis: Redis, tab: Tab
) -> None:
    """Five wrong passwords from this address (README "Sign-in limits"): the page says
    when to try again, even to the right password, with 429 and Retry-After; after
    `tessera user unlock` the same form signs in."""
    page = tab.page
    s = await make_setup(redis)
    await open_login_page(page, stack, code_request(s.client, s.scope))
    for i in range(5):
        await sign_in(page, s.user, f"guess {i}")
        await expect(page.get_by_role("alert")).to_have_text(LOGIN_FAILED)

    async with page.expect_response(f"{stack.authorize}/login") as answer:
        await sign_in(page, s.user)
    limited = await answer.value
    assert limited.status == 429
    assert 1 <= int(await limited.header_value("retry-after") or 0) <= 900
    alert = page.get_by_role("alert")
    await expect(alert).to_have_text(re.compile(r"^Too many sign-in attempts\. Try again in "))
    await expect(alert).to_be_visible()
    await expect(page.get_by_label("Username")).to_have_value(s.user)

    assert (await tessera(stack, "user", "unlock", s.user)).status == 0
    await sign_in(page, s.user)
    await page.wait_for_url(f"{stack.authorize}/consent?interaction=*")


async def test_deny_in_the_browser_returns_access_denied(
    stack: Stack, redis: Redis, tab: Tab
) -> None:
    page = tab.page
    s = await make_setup(redis)
    params = code_request(s.client, s.scope)

    await open_login_page(page, stack, params)
    await sign_in(page, s.user)
    await page.wait_for_url(f"{stack.authorize}/consent?interaction=*")
    back = await back_at_client(page, stack, page.get_by_role("button", name="Deny").click)
    assert_access_denied(back, stack, params["state"])


async def test_client_supplied_markup_is_shown_as_text_and_never_runs(
    stack: Stack, redis: Redis, tab: Tab
) -> None:
    page = tab.page
    # Whatever the page's Content-Security-Policy would block, record it: escaping alone
    # must keep the markup inert, so the policy never has anything to block.
    await page.add_init_script(
        "window.__csp = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    scope = unique("read")
    await scopes.add(redis, scope, f"Reads {XSS_IMG} things")
    user = await make_user(redis)
    name = f"Evil {XSS_IMG}"
    description = f"Totally harmless {XSS_SCRIPT} app"
    client = await make_client(
        redis, [scope], name=name, version=XSS_SCRIPT, description=description
    )

    await open_login_page(page, stack, code_request(client, scope))
    await expect(page.locator("main")).to_contain_text(f"to continue to {name} ({XSS_SCRIPT})")
    await sign_in(page, user)
    await page.wait_for_url(f"{stack.authorize}/consent?interaction=*")

    main = page.locator("main")
    await expect(main).to_contain_text(f"{name} ({XSS_SCRIPT}) is requesting access")
    await expect(main).to_contain_text(description)
    await expect(main).to_contain_text(f"Reads {XSS_IMG} things")
    # The markup stayed text: no element was made of it.
    await expect(page.locator("img:not(.logo)")).to_have_count(0)
    await expect(page.locator("body script")).to_have_count(0)
    assert await page.evaluate("typeof window.__xss") == "undefined"
    assert await page.evaluate("window.__csp") == []

    # Approved, the client is listed on the connected applications page: text there too.
    assert "code" in await approve_and_land(page, stack)
    await page.goto(f"{stack.authorize}/connected-apps")
    main = page.locator("main")
    await expect(main.get_by_role("heading", level=2)).to_have_text(f"{name} ({XSS_SCRIPT})")
    await expect(main).to_contain_text(description)
    await expect(main).to_contain_text(f"Reads {XSS_IMG} things")
    await expect(page.get_by_role("button", name=f"Remove access of {name}")).to_be_visible()
    await expect(page.locator("img:not(.logo)")).to_have_count(0)
    await expect(page.locator("body script")).to_have_count(0)
    assert await page.evaluate("typeof window.__xss") == "undefined"
    assert await page.evaluate("window.__csp") == []
    assert tab.dialogs == []

    # And a logo that would run a script never gets registered (RFC 7591 §2 logo_uri).
    for logo in ("javascript:window.__xss=1", "data:image/svg+xml,<svg/onload=alert(1)>"):
        with pytest.raises(ValueError, match="must be an absolute https URL"):
            await make_client(redis, [scope], name="Evil logo", logo_uri=logo)


async def test_the_login_page_cannot_be_framed(
    stack: Stack, redis: Redis, browser: Browser
) -> None:
    """RFC 6749 §10.13. A page on another site frames the login page; the browser must
    refuse to show it. As a control, the same page with the two anti-framing headers
    stripped on the way in does show the form, so the test can tell the difference."""
    read = await make_scope(redis)
    client = await make_client(redis, [read])
    attacker = "https://attacker.example/frame.html"

    async def framed_login(strip_headers: bool) -> tuple[dict[str, str], str | None, bool]:
        """Headers of the framed login page, why the frame's load failed, and whether the
        frame shows the login form."""
        async with open_tab(browser) as tab:
            page = tab.page
            # Chromium's Local Network Access stops a public site from loading anything from
            # loopback unless the person allows it (only a secure context may ask, hence the
            # attacker's https). Allow it, or the frame would be blocked for the wrong
            # reason; the control below proves it is not.
            await page.context.grant_permissions(["local-network-access"])
            await open_login_page(page, stack, code_request(client, read))
            login_url = page.url
            html = (
                "<!doctype html><title>Attacker</title>"
                f'<iframe id=victim src="{login_url}" width=600 height=600'
                " onload=\"document.title = 'loaded'\"></iframe>"
            )

            async def attacker_site(route: Route) -> None:
                await route.fulfill(status=200, content_type="text/html", body=html)

            await page.route(attacker, attacker_site)
            if strip_headers:

                async def without_frame_protection(route: Route) -> None:
                    response = await route.fetch()
                    headers = {
                        k: v
                        for k, v in response.headers.items()
                        if k.lower() not in ("x-frame-options", "content-security-policy")
                    }
                    await route.fulfill(response=response, headers=headers)

                await page.route(login_url, without_frame_protection)
            failures: list[str | None] = []
            page.on(
                "requestfailed",
                lambda r: failures.append(r.failure) if r.url == login_url else None,
            )
            async with page.expect_response(login_url) as answer:
                await page.goto(attacker)
            response = await answer.value
            # In another site's frame the SameSite=Lax session cookie is not sent, so the
            # login URL answers with the "expired" page (400); the control's route.fetch
            # sends the context's cookies and gets the login page (200). Framed, any of our
            # pages must stay blank.
            assert response.status == (200 if strip_headers else 400)
            assert response.frame.parent_frame == page.main_frame
            # The iframe's load event fires for the login page and for the browser's error
            # page alike; after it the frame's fate is settled.
            await expect(page).to_have_title("loaded")
            shows_form = await page.frame_locator("#victim").locator("main.card").count() == 1
            return await response.all_headers(), (failures or [None])[0], shows_form

    headers, failure, shows_form = await framed_login(strip_headers=False)
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert failure == "net::ERR_BLOCKED_BY_RESPONSE"
    assert not shows_form, "a Tessera page was displayed inside another site's frame"

    _, failure, control_shows_form = await framed_login(strip_headers=True)
    assert failure is None
    assert control_shows_form, "control failed: without the headers the frame should load"


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_screenshots_of_every_page(
    stack: Stack, redis: Redis, browser: Browser, size: str
) -> None:
    read = await make_scope(redis, "Read your calendar and the events in it")
    write = await make_scope(redis, "Create, change and delete events in your calendar")
    user = await make_user(redis)
    client = await make_client(
        redis,
        [read, write],
        name="Calendar Sync",
        version="2.1",
        description="Keeps your diary in order across your devices.",
        logo_uri=LOGO_URI,
    )
    viewport = DESKTOP if size == "desktop" else PHONE
    saved = []

    async def shoot(page: Page, name: str) -> None:
        await no_horizontal_scroll(page)
        saved.append(await screenshot(page, f"{size}-{name}"))

    async with open_tab(browser, viewport, phone=size == "phone") as tab:
        page = tab.page
        await serve_logo(page)
        await open_login_page(page, stack, code_request(client, f"{read} {write}"))
        await expect(page.get_by_text("to continue to Calendar Sync (2.1)")).to_be_visible()
        await shoot(page, "login")

        await sign_in(page, user, "not the password")
        await expect(page.get_by_role("alert")).to_have_text(LOGIN_FAILED)
        await expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
        await shoot(page, "login-error")

        await sign_in(page, user)
        await page.wait_for_url(f"{stack.authorize}/consent?interaction=*")
        await expect(page.get_by_role("button", name="Approve")).to_be_visible()
        await expect(page.get_by_text("Calendar Sync (2.1) is requesting access")).to_be_visible()
        await expect(page.get_by_text("Keeps your diary in order")).to_be_visible()
        logo = page.locator("img.client-logo")
        await expect(logo).to_have_attribute("src", LOGO_URI)
        # The logo was fetched and drawn: the CSP lets an https image through.
        assert await logo.evaluate("img => img.complete && img.naturalWidth") == 96
        await shoot(page, "approval")

        assert "code" in await approve_and_land(page, stack)
        await page.goto(f"{stack.authorize}/connected-apps")
        await expect(page.get_by_role("heading", name="Calendar Sync (2.1)")).to_be_visible()
        await expect(page.get_by_text("Create, change and delete events")).to_be_visible()
        await expect(page.get_by_text("First approved")).to_be_visible()
        await shoot(page, "connected-apps")

        await page.get_by_role("button", name="Remove access of Calendar Sync (2.1)").click()
        await expect(page.get_by_role("status")).to_have_text(REVOKED)
        await expect(page.get_by_text("No application can use your account.")).to_be_visible()
        await shoot(page, "connected-apps-empty")

        await page.get_by_role("link", name="Sign out").click()
        await page.wait_for_url(f"{stack.authorize}/logout")
        await expect(page.get_by_text(f"Signed in as {user}.")).to_be_visible()
        await expect(page.get_by_role("link", name="Connected applications")).to_be_visible()
        await shoot(page, "logout")

        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_role("heading", name="Signed out")).to_be_visible()
        await shoot(page, "signed-out")

        answer = await page.goto(authorize_url(stack, {"client_id": "no-such-client"}))
        assert answer is not None
        assert answer.status == 400
        await expect(page.get_by_role("alert")).to_have_text("The application is not known here.")
        await expect(page.locator("code")).to_have_text("invalid_request")
        await shoot(page, "error")
        assert tab.dialogs == []

    assert [p.name for p in saved] == [
        f"{size}-{page}.png"
        for page in (
            "login",
            "login-error",
            "approval",
            "connected-apps",
            "connected-apps-empty",
            "logout",
            "signed-out",
            "error",
        )
    ]


# --- a single-page app on another origin (CORS) -------------------------------------------

SPA_PAGE = Path(__file__).resolve().parent / "spa" / "app.html"


@dataclass(frozen=True)
class SpaSites:
    """The app's page served on two origins: one its client registered, one nobody did."""

    registered: str
    unregistered: str


@pytest_asyncio.fixture(loop_scope="module")
async def spa_sites() -> AsyncIterator[SpaSites]:
    async def page(request: web.Request) -> web.FileResponse:
        return web.FileResponse(SPA_PAGE, headers={"Cache-Control": "no-store"})

    app = web.Application()
    app.router.add_get("/app", page)
    app.router.add_get("/callback", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ports = free_port(), free_port()
    for port in ports:
        await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield SpaSites(*(f"http://127.0.0.1:{port}" for port in ports))
    finally:
        await runner.cleanup()


async def spa_client(redis: Redis, sites: SpaSites) -> tuple[Registered, str]:
    """A public client for the app, its redirect URI on the registered site; its scope."""
    scope = await make_scope(redis, "Read your calendar")
    client = await make_client(
        redis,
        [scope],
        client_type="public",
        redirect_uris=[f"{sites.registered}/callback"],
        refresh_count=5,
    )
    return client, scope


async def open_spa(page: Page, stack: Stack, site: str, client: Registered, scope: str) -> None:
    await page.goto(f"{site}/app")
    await page.evaluate(
        "([issuer, clientId, scope]) => configure(issuer, clientId, scope)",
        [stack.issuer, client.client_id, scope],
    )


async def test_a_single_page_app_runs_the_code_flow_with_fetch_from_its_own_origin(
    stack: Stack,
    redis: Redis,
    http: aiohttp.ClientSession,
    tab: Tab,
    spa_sites: SpaSites,
) -> None:
    page = tab.page
    client, scope = await spa_client(redis, spa_sites)
    user = await make_user(redis)
    api = await make_resource_server(redis, [scope])
    await until_origin(http, stack, spa_sites.registered, allowed=True)

    # The app reads the metadata (CORS on the authorize service) and sends the browser
    # to sign in; Tessera's pages then run on Tessera's origin, as always.
    await open_spa(page, stack, spa_sites.registered, client, scope)
    await page.get_by_role("button", name="Sign in with Tessera").click()
    await page.wait_for_url(f"{stack.authorize}/login?interaction=*")
    await sign_in(page, user)
    await page.wait_for_url(f"{stack.authorize}/consent?interaction=*")
    await page.get_by_role("button", name="Approve").click()
    await page.wait_for_url(f"{spa_sites.registered}/callback?*")

    # Back in the app, on its origin: the code redeemed with fetch().
    redeemed = await page.evaluate("redeem()")
    remember_secrets(redeemed["body"])
    assert redeemed["status"] == 200, redeemed
    assert redeemed["body"]["token_type"] == "Bearer"
    assert redeemed["body"]["scope"] == scope
    assert await is_active(http, stack, api, redeemed["body"]["access_token"])
    assert await page.evaluate("signingKeys()") >= 1

    refreshed = await page.evaluate("refresh()")
    remember_secrets(refreshed["body"])
    assert refreshed["status"] == 200, refreshed
    assert refreshed["body"]["refresh_token"] != redeemed["body"]["refresh_token"]
    access_token = refreshed["body"]["access_token"]
    assert await is_active(http, stack, api, access_token)

    # A request only a preflight lets through (its Content-Type): passed, and the app
    # can read the error, as it can every error Tessera answers.
    wrong = await page.evaluate("sendJson()")
    assert wrong["status"] == 400
    assert wrong["body"]["error"] == "invalid_request"

    signed_out = await page.evaluate("signOut()")
    assert signed_out == {"status": 200, "body": None}
    assert not await is_active(http, stack, api, access_token)
    again = await page.evaluate("refresh()")
    assert again["status"] == 400
    assert again["body"]["error"] == "invalid_grant"
    assert tab.dialogs == []


async def test_a_page_on_an_origin_no_client_registered_is_blocked_by_the_browser(
    stack: Stack,
    redis: Redis,
    http: aiohttp.ClientSession,
    tab: Tab,
    spa_sites: SpaSites,
) -> None:
    """The same page, served from another port (another origin), calls the same
    endpoints; the browser lets it read nothing. As a control, the page on the
    registered origin reads the same URLs, so the refusal is CORS, not the network."""
    page = tab.page
    client, scope = await spa_client(redis, spa_sites)
    await until_origin(http, stack, spa_sites.registered, allowed=True)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    attempts = """([urls, clientId]) => Promise.all([
        fetch(urls.metadata),
        fetch(urls.jwks),
        post(urls.token, {grant_type: "refresh_token", refresh_token: "x.y", client_id: clientId}),
        post(urls.revoke, {token: "x.y", client_id: clientId}),
      ].map(call => call.then(() => "read", e => `${e.name}: ${e.message}`)))"""
    urls = {
        "metadata": stack.metadata,
        "jwks": f"{stack.token}/jwks.json",
        "token": f"{stack.token}/token",
        "revoke": stack.revoke,
    }

    await open_spa(page, stack, spa_sites.registered, client, scope)
    assert await page.evaluate(attempts, [urls, client.client_id]) == ["read"] * 4

    await open_spa(page, stack, spa_sites.unregistered, client, scope)
    blocked = await page.evaluate(attempts, [urls, client.client_id])

    assert blocked == ["TypeError: Failed to fetch"] * 4
    refusals = [text for text in console if "blocked by CORS policy" in text]
    assert len(refusals) == 4, console
    for text in refusals:
        assert f"from origin '{spa_sites.unregistered}'" in text
        assert "No 'Access-Control-Allow-Origin' header" in text
