"""Tessera's own scopes: built in beside OpenID Connect's (``shared.domain.openid``), so
an administrator never defines, changes or deletes them (``shared.storage.scopes.BUILT_IN``).
No I/O."""

from __future__ import annotations

# Grants the admin API (services/admin): an access token carrying it, obtained as any
# other (client credentials, for automation), is an administrator's credential.
ADMIN = "tessera:admin"

TESSERA_SCOPES: dict[str, str] = {
    ADMIN: "Administer Tessera: clients, scopes, users and tokens",
}
