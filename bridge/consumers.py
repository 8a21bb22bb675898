"""The websocket consumer: a dumb pipe that joins the groups of what a page shows and forwards fragments."""

import asyncio
import re

from channels.db import database_sync_to_async
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


class GroupConsumer(AsyncWebsocketConsumer):
    """Joins its groups once let in, and leaves them when the socket closes."""

    async def join(self, groups: list[str]):
        global server_loop
        server_loop = asyncio.get_running_loop()
        self.joined = groups
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)


class LiveConsumer(GroupConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        await self.join(groups_for(self.scope.get("query_string", b"").decode()))

    async def push_fragment(self, message):
        await self.send(text_data=message["html"])


class ExecutorConsumer(GroupConsumer):
    """Job executors and `bosun watch` (token in x-token or Authorization: Bearer) hear when a project changes.

    ?project=P (repeatable) limits the notices to those projects; without it, every project's (group x.all). Each
    notice is {"event": "changed", "project": P}: the executor then looks for open tasks and requests.
    """

    async def connect(self):
        headers = dict(self.scope.get("headers") or [])
        token = headers.get(b"x-token", b"").decode("latin-1")
        bearer = headers.get(b"authorization", b"").decode("latin-1")
        if not token and bearer.lower().startswith("bearer "):
            token = bearer[7:].strip()
        if not await database_sync_to_async(_token_is_valid)(token):
            await self.close(code=4401)
            return
        projects = [v for k, v in parse_qsl(self.scope.get("query_string", b"").decode()) if k == "project"]
        await self.join([f"x.{p}" for p in projects if NAME.match(p)] or ["x.all"])

    async def push_notice(self, message):
        await self.send(text_data=message["json"])


def _token_is_valid(token: str) -> bool:
    """Any user's valid token: the notices only say that a project changed (viewers may watch)."""
    from sequences.models import ApiToken

    return bool(token) and ApiToken.authenticate(token) is not None
