"""The resource owner password credentials grant (RFC 6749 §4.3).

Only for clients explicitly allowed it (off by default). The password check is the login
page's (``shared.web.login_throttle``): argon2id off the event loop, and the same sign-in
limits, which RFC 6749 §10.7 asks for ("protect the endpoint against brute force
attacks"). A limit refuses with 429 and Retry-After (RFC 6585 §4), without a check.
"""

from __future__ import annotations

from services.token.grants.base import TokenRequest
from shared.domain.oauth_errors import invalid_grant, invalid_request, too_many_requests
from shared.domain.token_records import Grant
from shared.storage import families
from shared.storage.token_minting import IssuedTokens
from shared.web import login_throttle
from shared.web.client_address import limit_subject
from shared.web.login_throttle import Refused
from shared.web.password_checks import PASSWORD_CHECKS

GRANT_TYPE = "password"


async def handle(request: TokenRequest) -> IssuedTokens:
    username = request.params.get("username")
    password = request.params.get("password")
    if username is None or password is None:
        raise invalid_request("The username and password parameters are required.")
    scope = request.scope_or_default()
    redis, settings = request.tessera.redis, request.tessera.settings
    address = limit_subject(request.http, settings)
    user = await login_throttle.sign_in(
        redis,
        settings,
        request.http.app[PASSWORD_CHECKS],
        username=username,
        password=password,
        address=address,
    )
    if isinstance(user, Refused):
        login_throttle.log_refusal(
            request.http,
            user,
            username,
            address,
            via="password_grant",
            client_id=request.client.client_id,
        )
        if user.limited:
            raise too_many_requests(user.retry_after, user.reason.value)
        # One answer for a wrong username and a wrong password.
        raise invalid_grant(user.reason.value)
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
