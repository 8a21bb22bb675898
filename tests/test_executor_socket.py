"""/ws/executor/: the notices job executors wait on. Only tokens that may operate get them; sockets are capped
per token and in all; unknown tokens are throttled; a revoked token's socket stops hearing."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from bridge import consumers, live
from bridge.asgi import application
from sequences.models import ApiToken

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def socket(token: str | None, project="shop", bearer=False) -> WebsocketCommunicator:
    headers = []
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()) if bearer else (b"x-token", token.encode()))
    return WebsocketCommunicator(application, f"/ws/executor/?project={project}", headers=headers)


async def refusal(communicator) -> int | None:
    connected, code = await communicator.connect()
    if connected:
        await communicator.disconnect()
        return None
    return code


async def test_an_operator_s_socket_carries_its_project_s_notices(operator_user):
    _, token = await sync_to_async(ApiToken.issue)(operator_user, "executor")
    listening = socket(token, bearer=True)
    assert (await listening.connect())[0]
    await sync_to_async(live.wake_executors)("other")
    assert await listening.receive_nothing(timeout=0.2)
    await sync_to_async(live.wake_executors)("shop")
    assert await listening.receive_from(timeout=2) == '{"event": "changed", "project": "shop"}'
    await listening.disconnect()


async def test_no_token_an_unknown_one_or_a_viewer_s_is_refused(viewer_user):
    _, viewer = await sync_to_async(ApiToken.issue)(viewer_user, "watch")
    assert await refusal(socket(None)) == 4401
    assert await refusal(socket("bsn_nope")) == 4401
    assert await refusal(socket(viewer)) == 4403


async def test_unknown_tokens_are_throttled_and_a_valid_one_still_connects(operator_user, settings):
    settings.BOSUN_THROTTLE_FAILURES = 3
    _, token = await sync_to_async(ApiToken.issue)(operator_user, "executor")
    assert [await refusal(socket(f"bsn_guess{i}")) for i in range(4)] == [4401, 4401, 4401, 4429]
    assert await refusal(socket(token)) is None


async def test_sockets_are_capped_per_token(operator_user):
    _, token = await sync_to_async(ApiToken.issue)(operator_user, "executor")
    opened = []
    for _ in range(consumers.MAX_SOCKETS_PER_TOKEN):
        one = socket(token)
        assert (await one.connect())[0]
        opened.append(one)
    assert await refusal(socket(token)) == 4429
    await opened.pop().disconnect()
    assert await refusal(socket(token)) is None  # a closed socket frees its place
    for one in opened:
        await one.disconnect()


async def test_a_revoked_token_s_open_socket_hears_nothing_more(operator_user):
    made, token = await sync_to_async(ApiToken.issue)(operator_user, "executor")
    listening = socket(token)
    assert (await listening.connect())[0]
    made.revoked_at = timezone.now()
    await sync_to_async(made.save)(update_fields=["revoked_at"])

    await sync_to_async(live.wake_executors)("shop")

    assert (await listening.receive_output(timeout=2))["type"] == "websocket.close"
