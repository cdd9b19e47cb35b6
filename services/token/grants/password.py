"""The resource owner password credentials grant (RFC 6749 §4.3).

Only for clients explicitly allowed it (off by default). The password check is the login
page's: argon2id off the event loop, and the same per-username failure limit, which
RFC 6749 §10.7 asks for ("protect the endpoint against brute force attacks").
"""

from __future__ import annotations

from services.token.grants.base import TokenRequest
from shared import families, fingerprint, login_throttle
from shared.errors import invalid_grant, invalid_request
from shared.login_throttle import Refused
from shared.logs import security_event
from shared.tokens import Grant, IssuedTokens

GRANT_TYPE = "password"


async def handle(request: TokenRequest) -> IssuedTokens:
    username = request.params.get("username")
    password = request.params.get("password")
    if username is None or password is None:
        raise invalid_request("The username and password parameters are required.")
    scope = request.scope_or_default()
    user = await login_throttle.sign_in(request.redis, request.settings, username, password)
    if isinstance(user, Refused):
        # A fingerprint: people type their password into the username field.
        security_event(
            "login_locked" if user is Refused.LOCKED else "login_failed",
            via="password_grant",
            username=fingerprint.of(username),
            client_id=request.client.client_id,
        )
        # One answer for a wrong username, a wrong password and a locked username.
        raise invalid_grant(user.value)
    grant = Grant(
        family=families.new_family(),
        client_id=request.client.client_id,
        scope=scope,
        username=user.username,
        sub=user.sub,
    )
    issued = await request.issue(grant, refreshable=True)
    assert issued is not None  # a new family cannot have been revoked
    return issued
