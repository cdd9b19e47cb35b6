from services.token.app import create_app
from shared.serve import serve

serve("token", create_app, default_port=9001)
