"""ASGI entry point: HTTP through Django, websockets through Channels (bridge/routing.py says how each is checked)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bridge.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()  # before importing consumers: it sets up the apps

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from .routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
