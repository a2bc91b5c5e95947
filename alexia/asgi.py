"""HTTP and websockets in one ASGI application (daphne serves it, see Procfile)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alexia.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import re_path  # noqa: E402

from channels_app import publish as _publish  # noqa: E402
from channels_app.routing import websocket_urlpatterns, widget_websocket_urlpatterns  # noqa: E402

_publish.IN_WEB_PROCESS = True

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(
            [
                *widget_websocket_urlpatterns,
                re_path(
                    r"^", AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
                ),
            ]
        ),
    }
)
