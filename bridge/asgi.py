"""ASGI entry point: HTTP through Django, websockets through Channels (bridge/routing.py says how each is checked)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bridge.settings")

import django  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402

django.setup(set_prefix=False)  # before importing consumers: it sets up the apps


class OneSyncThreadHandler(ASGIHandler):
    """Django's ASGI handler, but the sync part of every request runs on one long-lived thread.

    Django gives each request its own thread for sync code, and with it a new database connection: on
    SQLite that is a file open and its pragmas per request. SQLite has one writer at a time anyway, so
    here every request's sync code shares asgiref's single sync thread and its persistent connection.
    PostgreSQL keeps Django's thread per request, with connections from the pool.
    """

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)


def _http_app():
    from django.conf import settings
    from django.core.handlers.asgi import ASGIHandler as Django

    sqlite = settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
    return OneSyncThreadHandler() if sqlite else Django()


django_asgi_app = _http_app()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from .intake import EventIntake  # noqa: E402
from .routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": EventIntake(django_asgi_app),
        "websocket": URLRouter(websocket_urlpatterns),
    }
)

# The web process pushes its own changes to the pages and executors it serves (and, through Redis, others').
# BOSUN_LIVE=0 leaves the pusher off where the application is only imported (the test suite).
if os.environ.get("BOSUN_LIVE", "1") != "0":
    from . import live  # noqa: E402

    live.start()
