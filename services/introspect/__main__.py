from services.introspect.app import create_app
from shared.web.serve import serve

serve("introspect", create_app, default_port=9002)
