"""How the pages answer the browser: a template with the approval page branding, or a
303 to the next page."""

from __future__ import annotations

from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from shared.web.app_keys import SETTINGS


def render(
    request: web.Request, template: str, context: dict[str, object], status: int = 200
) -> web.Response:
    """A page with the approval page branding (webMethods Integration Server's
    approvalpage.* settings)."""
    settings = request.app[SETTINGS]
    branding = {
        "title": settings.approval_title,
        "header": settings.approval_header,
        "logo_url": settings.approval_logo_url,
        "footer": settings.approval_footer,
    }
    return aiohttp_jinja2.render_template(
        template, request, {**context, "brand": branding}, status=status
    )


def see_other(location: str) -> web.Response:
    # 303 so a POST is never replayed at the target (RFC 9700 §4.12).
    return web.Response(status=303, headers={"Location": location})


def with_interaction(page: str, interaction_id: str) -> str:
    """The address of ``page`` for one pending request."""
    return f"{page}?{urlencode({'interaction': interaction_id})}"
