"""The websocket consumer: a dumb pipe that joins the groups of what a page shows and forwards fragments."""

import asyncio
import re
import threading
from collections import Counter
from urllib.parse import parse_qsl

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

NAME = re.compile(r"^[A-Za-z0-9-]{1,80}$")

# The loop the web server runs websockets on; bridge/live.py sends on it from other threads.
server_loop: asyncio.AbstractEventLoop | None = None

# How many sockets of this process listen to each group, kept by the consumers for bridge/live.py's pusher
# thread (which must not read the channel layer's own structures from outside the loop).
_listeners: Counter = Counter()
_listeners_lock = threading.Lock()


def listeners(group: str | None = None) -> int:
    """Sockets of this process in `group` (in any group when None)."""
    with _listeners_lock:
        return _listeners[group] if group is not None else sum(_listeners.values())


def _count(groups: list[str], step: int):
    with _listeners_lock:
        for group in groups:
            _listeners[group] += step
            if _listeners[group] <= 0:
                del _listeners[group]


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
        _count(groups, 1)
        await self.accept()

    async def disconnect(self, code):
        joined, self.joined = getattr(self, "joined", []), []
        _count(joined, -1)
        for group in joined:
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


# Sockets of /ws/executor/ this process keeps open, per token and in all: notices are cheap, but each socket
# costs every commit a send.
MAX_SOCKETS_PER_TOKEN = 16
MAX_SOCKETS = 256
_open: dict[int, int] = {}  # token id -> open sockets (all consumers run on one event loop)


class ExecutorConsumer(GroupConsumer):
    """Job executors and `bosun watch` (a token that may operate sequences, in x-token or Authorization: Bearer)
    hear when a project changes.

    ?project=P (repeatable) limits the notices to those projects; without it, every project's (group x.all). Each
    notice is {"event": "changed", "project": P}: the executor then looks for open tasks and requests. Unknown
    tokens are throttled as on the API; a token revoked later stops getting notices and its socket is closed.
    """

    token_id: int | None = None

    async def connect(self):
        headers = dict(self.scope.get("headers") or [])
        token = headers.get(b"x-token", b"").decode("latin-1")
        bearer = headers.get(b"authorization", b"").decode("latin-1")
        if not token and bearer.lower().startswith("bearer "):
            token = bearer[7:].strip()
        self.key = token
        peer = (self.scope.get("client") or ("", 0))[0] or ""
        forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1")
        verdict, token_id = await database_sync_to_async(_check_token)(token, peer, forwarded)
        if verdict:
            await self.close(code=verdict)
            return
        if _open.get(token_id, 0) >= MAX_SOCKETS_PER_TOKEN or sum(_open.values()) >= MAX_SOCKETS:
            await self.close(code=4429)
            return
        self.token_id = token_id
        _open[token_id] = _open.get(token_id, 0) + 1
        projects = [v for k, v in parse_qsl(self.scope.get("query_string", b"").decode()) if k == "project"]
        await self.join([f"x.{p}" for p in projects if NAME.match(p)] or ["x.all"])

    async def disconnect(self, code):
        if self.token_id is not None:
            left = _open.get(self.token_id, 1) - 1
            if left > 0:
                _open[self.token_id] = left
            else:
                _open.pop(self.token_id, None)
            self.token_id = None
        await super().disconnect(code)

    async def push_notice(self, message):
        if not await database_sync_to_async(_still_valid)(self.key):
            await self.close(code=4401)
            return
        await self.send(text_data=message["json"])


def _check_token(key: str, peer: str, forwarded: str) -> tuple[int, int | None]:
    """(close code or 0, the token's id): 4401 unknown, 4429 throttled, 4403 may not operate."""
    from sequences.api.auth import OPERATE, token_from
    from sequences.store import throttle

    if not key:
        return 4401, None
    address = throttle.address_of(peer, forwarded)
    try:
        token = token_from(address, key)
    except throttle.Throttled:
        return 4429, None
    if token is None:
        throttle.failed_token_at(address, "the executor socket")
        return 4401, None
    if not token.user.has_perm(OPERATE):
        return 4403, None
    return 0, token.id


def _still_valid(key: str) -> bool:
    """Whether the socket's token is still good (looked up through the API's short cache of tokens)."""
    from sequences.api.auth import OPERATE, cached_token

    token = cached_token(key)
    return token is not None and token.user.has_perm(OPERATE)
