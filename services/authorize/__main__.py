from services.authorize.app import create_app
from shared.web.serve import serve

serve("authorize", create_app, default_port=9000)
