from services.token.app import create_app
from shared.web.serve import serve

serve("token", create_app, default_port=9001)
