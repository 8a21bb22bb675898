from channels.auth import AuthMiddlewareStack
from django.urls import path

from . import consumers
from .origins import SameOriginValidator

websocket_urlpatterns = [
    # Bridge pages: their session, from their own origin only.
    path("ws/live/", SameOriginValidator(AuthMiddlewareStack(consumers.LiveConsumer.as_asgi()))),
    # Job executors: an API token, no cookies, so no origin to check.
    path("ws/executor/", consumers.ExecutorConsumer.as_asgi()),
]
