"""The scale-out mode's channel layer: a push from one process reaches sockets served by another, via Redis."""

import asyncio
import contextlib
import os

import pytest
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.test import Client, override_settings

from bridge import live
from bridge import settings as bosun_settings

REDIS_URL = os.environ.get("BOSUN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@contextlib.asynccontextmanager
async def page_socket(user, context: str):
    """A logged-in page's websocket on `context`, over the Redis channel layer the scale-out mode runs with."""
    from channels.db import database_sync_to_async

    from bridge.asgi import application

    client = Client()
    await database_sync_to_async(client.force_login)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    with override_settings(CHANNEL_LAYERS=bosun_settings.channel_layers(REDIS_URL)):
        channel_layers.backends.clear()
        try:
            socket = WebsocketCommunicator(application, f"/ws/live/?context={context}", headers=[
                (b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000"), (b"cookie", cookie)])
            connected, _ = await socket.connect()
            assert connected, f"Redis at {REDIS_URL} is needed for the scale-out mode (.ci/run starts one)"
            yield socket
            await socket.disconnect()
        finally:
            channel_layers.backends.clear()


async def push(group: str, html: str):
    """live.send from a plain thread, as the engine or another server process would."""
    await asyncio.get_running_loop().run_in_executor(None, live.send, group, html)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_push_travels_through_redis_to_a_connected_page(admin_user):
    async with page_socket(admin_user, "ctx-redis") as socket:
        await push("c.ctx-redis", "<div id='x'>hi</div>")
        assert await socket.receive_from(timeout=5) == "<div id='x'>hi</div>"


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_an_idle_page_s_socket_outlives_the_layer_s_blocking_reads_and_still_hears_a_push(admin_user):
    """channels_redis blocks on BZPOPMIN for 5 s at a time: the socket's read timeout must outlast it, or every
    idle page's consumer dies after about 5 s and its socket is torn down."""
    async with page_socket(admin_user, "ctx-idle") as socket:
        assert await socket.receive_nothing(timeout=15, interval=0.5)  # idle: three blocking reads go by
        await push("c.ctx-idle", "<div id='y'>later</div>")
        assert await socket.receive_from(timeout=5) == "<div id='y'>later</div>"
