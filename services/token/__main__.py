from aiohttp import web

from services.admin.app import create_app as create_admin_app
from services.token.app import create_app
from shared.config.settings import Settings
from shared.web.metrics import METRICS
from shared.web.serve import serve


def admin_api(settings: Settings, token_app: web.Application) -> tuple[web.Application, int] | None:
    """The admin API on its own port (TESSERA_ADMIN_PORT; 0: none), its requests and
    changes counted in the token service's metrics."""
    if not settings.admin_port:
        return None
    return create_admin_app(settings, token_app[METRICS]), settings.admin_port


serve("token", create_app, default_port=9001, companion=admin_api)
