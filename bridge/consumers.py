"""The websocket consumer: a dumb pipe that joins the groups of what a page shows and forwards fragments."""

import asyncio
import re

from channels.generic.websocket import AsyncWebsocketConsumer
from urllib.parse import parse_qsl

NAME = re.compile(r"^[A-Za-z0-9-]{1,80}$")

# The loop the web server runs websockets on; bridge/live.py sends on it from other threads.
server_loop: asyncio.AbstractEventLoop | None = None


def groups_for(query: str) -> list[str]:
    """?projects=1 -> the projects overview; ?project=P -> p.P; ?context=C -> c.C."""
    params = dict(parse_qsl(query))
    groups = []
    if params.get("projects"):
        groups.append("projects")
    if NAME.match(params.get("project", "")):
        groups.append(f"p.{params['project']}")
    if NAME.match(params.get("context", "")):
        groups.append(f"c.{params['context']}")
    return groups


class LiveConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        global server_loop
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        server_loop = asyncio.get_running_loop()
        self.joined = groups_for(self.scope.get("query_string", b"").decode())
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def push_fragment(self, message):
        await self.send(text_data=message["html"])
