"""The Bridge's pages without a browser: login, what they show, bounded queries, forms, live consumer."""

import re
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client, override_settings

from bridge import consumers, live
from bridge.asgi import application
from sequences.models import ApiToken, SequenceExecution as SE
from tests.helpers import current_task, run_of


IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def browser(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def viewer_browser(viewer_user):
    client = Client()
    client.force_login(viewer_user)
    return client


def test_pages_need_a_login(sockshop):
    for path in ("/bridge/", "/bridge/project/sockshop/", "/bridge/project/sockshop/sequence/", "/bridge/tokens/"):
        response = Client().get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_projects_page_counts_running_waiting_and_failed(browser, api, sockshop):
    api.trigger(tag="1")
    api.trigger(tag="2")
    failed = api.trigger(service="orders")
    api.finish(current_task(failed), result="fail")
    page = browser.get("/bridge/").content.decode()
    assert "▶ 1</dd>" in page and "◷ 1</dd>" in page and "✖ 1</dd>" in page


def test_the_environment_shows_holder_waiting_and_latest_version(browser, api, sockshop, django_assert_num_queries):
    first = api.trigger(tag="0.11.1")
    api.trigger(tag="0.11.2")
    done = api.trigger(service="orders", tag="1.0")
    api.finish(current_task(done), result="fail")
    with django_assert_num_queries(17):  # 3 say which queue policy decides a lane, 1 reads integrations, 2 what is
        # deployed, 1 how the last ended context of each lane reads there (a rollback does not undo a failure)
        page = browser.get("/bridge/project/sockshop/").content.decode()
    lane = page[page.index('id="lane-dev-carts"'):page.index('id="lane-staging-carts"')]
    assert "Running" in lane and "1 waiting" in lane and first[:8] in lane and "deployment (triggered)" in lane
    orders = page[page.index('id="lane-dev-orders"'):page.index('id="lane-staging-orders"')]
    plain = re.sub(r"<[^>]+>", "", orders)  # an image may break only after a '/' and before its tag
    assert "Failed" in orders and "docker.io/keptnexamples/orders:1.0" in plain
    assert re.search(r'>orders</span><wbr><span class="nobreak"[^>]*>:1.0</span>', orders)


def test_the_list_makes_the_same_number_of_queries_for_3_or_30_sequences(browser, api, sockshop,
                                                                          django_assert_num_queries):
    for i in range(3):
        api.trigger(tag=str(i))
    with django_assert_num_queries(11):  # 1 of them: who sent each row's trigger
        browser.get("/bridge/project/sockshop/sequence/")
    for i in range(27):
        api.trigger(tag=str(i), service="orders" if i % 2 else "carts")
    with django_assert_num_queries(11):
        page = browser.get("/bridge/project/sockshop/sequence/").content.decode()
    assert page.count('class="seq-row"') == 25
    assert "Show older" in page


def test_the_list_filters_on_the_server_and_pages_by_keyset(browser, api, sockshop):
    carts = [api.trigger(tag=str(i)) for i in range(3)]
    orders = api.trigger(service="orders")

    def rows(query):
        page = browser.get(f"/bridge/project/sockshop/sequence/?{query}").content.decode()
        return [c for c in carts + [orders] if f'id="row-{c}"' in page]

    assert rows("service=orders") == [orders]
    assert rows("state=waiting") == carts[1:]
    assert rows("stage=dev&sequence=delivery&service=carts") == carts
    assert rows(f"before={run_of(carts[2]).id}") == carts[:2]


def test_a_deep_link_shows_blocker_and_unknown_ones_are_404(browser, api, sockshop):
    first = api.trigger(tag="1")
    second = api.trigger(tag="2")
    page = browser.get(f"/bridge/project/sockshop/sequence/{second}").content.decode()
    assert "Waiting in dev/carts: position 1, blocked by" in page
    assert f'href="/bridge/project/sockshop/sequence/{first}"' in page
    assert browser.get("/bridge/project/sockshop/sequence/nope").status_code == 404
    assert browser.get(f"/bridge/project/sockshop/sequence/{first}/stage/qa").status_code == 404
    assert browser.get(f"/bridge/project/sockshop/sequence/{first}/event/nope").status_code == 404
    task = current_task(first)
    assert browser.get(f"/bridge/project/sockshop/sequence/{first}/event/{task.triggered_id}").status_code == 200


def test_event_payloads_are_escaped(browser, api, sockshop):
    context = api.trigger(note="<script>alert(1)</script>")
    page = browser.get(f"/bridge/project/sockshop/sequence/{context}").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_trigger_form_starts_a_delivery_and_opens_it(browser, sockshop):
    response = browser.post("/bridge/project/sockshop/trigger", {
        "target": "dev|delivery", "service": "carts", "image": "docker.io/keptnexamples/carts", "tag": "0.11.1",
        "labels": "buildId=42\nowner = team-a"})
    run = SE.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/sequence/{run.context}")
    assert run.input_data["configurationChange"]["values"]["image"] == "docker.io/keptnexamples/carts:0.11.1"
    assert run.input_data["labels"] == {"buildId": "42", "owner": "team-a"}


def test_a_bad_trigger_says_why_and_stores_nothing(browser, sockshop):
    response = browser.post("/bridge/project/sockshop/trigger", {"target": "qa|delivery", "service": "carts"},
                            follow=True)
    assert "has no stage &#x27;qa&#x27;" in response.content.decode()
    assert not SE.objects.exists()


def test_controls_without_javascript_redirect_with_the_outcome(browser, api, sockshop):
    context = api.trigger()
    response = browser.post(f"/bridge/project/sockshop/sequence/{context}/control", {"state": "pause"}, follow=True)
    assert "Done: the sequence is paused." in response.content.decode()
    response = browser.post(f"/bridge/project/sockshop/sequence/{context}/control", {"state": "pause"}, follow=True)
    assert "can be paused: it is paused." in response.content.decode()


def test_a_viewer_sees_but_cannot_control(viewer_browser, api, sockshop):
    context = api.trigger()
    response = viewer_browser.post(f"/bridge/project/sockshop/sequence/{context}/control", {"state": "abort"},
                                   HTTP_HX_REQUEST="true")
    assert "You may not control sequences" in response.content.decode()
    assert run_of(context).state == SE.STARTED


def test_tokens_are_created_shown_once_and_revoked(browser, admin_user):
    response = browser.post("/bridge/tokens/", {"name": "ci"})
    token = ApiToken.objects.get(name="ci")
    page = response.content.decode()
    assert "shown only once" in page and token.prefix in page
    assert "shown only once" not in browser.get("/bridge/tokens/").content.decode()
    browser.post(f"/bridge/tokens/{token.id}/revoke")
    token.refresh_from_db()
    assert token.revoked_at is not None


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@override_settings(CHANNEL_LAYERS=IN_MEMORY)  # tests/test_redis_layer.py covers the same path through Redis
async def test_the_live_socket_needs_a_session_and_forwards_pushed_fragments(admin_user):
    anonymous = WebsocketCommunicator(application, "/ws/live/?project=sockshop",
                                      headers=[(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")])
    connected, code = await anonymous.connect()
    assert not connected

    client = Client()
    await database_sync_to_async(client.force_login)(admin_user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    foreign = WebsocketCommunicator(application, "/ws/live/", headers=[
        (b"origin", b"http://evil.example"), (b"host", b"127.0.0.1:8000"), (b"cookie", cookie)])
    connected, _ = await foreign.connect()
    assert not connected

    socket = WebsocketCommunicator(application, "/ws/live/?project=sockshop&context=abc", headers=[
        (b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000"), (b"cookie", cookie)])
    connected, _ = await socket.connect()
    assert connected
    live.send("p.sockshop", '<tr id="row-x" hx-swap-oob="true"></tr>')
    assert await socket.receive_from(timeout=2) == '<tr id="row-x" hx-swap-oob="true"></tr>'
    live.send("c.other", "<div>not for this page</div>")
    assert await socket.receive_nothing(timeout=0.2)
    await socket.disconnect()


def test_a_change_renders_the_partials_of_every_page_that_shows_it(api, sockshop, monkeypatch):
    context = api.trigger()
    monkeypatch.setattr(live, "listening", lambda group: True)
    pushed = dict()
    for group, html in live.fragments("sockshop", context):
        pushed.setdefault(group, []).append(html)
    assert 'id="project-card-sockshop"' in pushed["projects"][0]
    assert any('id="lane-dev-carts"' in h and 'hx-swap-oob="true"' in h for h in pushed["p.sockshop"])
    assert any(f'id="row-{context}"' in h for h in pushed["p.sockshop"])
    assert 'id="live"' in pushed[f"c.{context}"][0]


@override_settings(CHANNEL_LAYERS=IN_MEMORY)  # only this layer knows who listens; with Redis, pushes always go
def test_nothing_is_rendered_when_no_page_listens(api, sockshop, django_assert_num_queries):
    context = api.trigger()
    with django_assert_num_queries(0):  # no page is open: no query, no rendering
        assert list(live.fragments("sockshop", context)) == []


def test_a_trigger_that_ended_at_once_has_a_page_saying_why(api, browser, sockshop):
    response = api.post("/api/v1/event", {"type": "sh.keptn.event.dev.build.triggered", "source": "script",
                                          "data": {"project": "sockshop", "stage": "dev", "service": "carts"}})
    context = response.json()["keptnContext"]
    page = browser.get(f"/bridge/project/sockshop/sequence/{context}")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Stage &#x27;dev&#x27; has no sequence &#x27;build&#x27;; it has delivery, evaluation." in text
    assert "dev.build.finished" in text and "dev.build.triggered" in text
    assert browser.get("/bridge/project/sockshop/sequence/00000000-0000-0000-0000-000000000000").status_code == 404


def test_a_change_wakes_the_live_pusher_only_when_a_page_or_executor_listens(db):
    """Waking the pusher thread costs the request that commits; with nobody listening nothing would be sent."""
    from asgiref.sync import async_to_sync
    from channels.layers import InMemoryChannelLayer, get_channel_layer

    layer, pusher = get_channel_layer(), live.Pusher()  # not started: its queue shows what it was told
    if isinstance(layer, InMemoryChannelLayer):
        async_to_sync(layer.flush)()  # no page of an earlier test still listens
    pusher.notice(project="sockshop", context="c-1")
    pusher.log_notice(project="sockshop", context="c-1", triggered_id="t-1")
    if isinstance(layer, InMemoryChannelLayer):
        assert pusher.notices.qsize() == 0
    else:  # Redis: pages may listen on another process, so every change is pushed
        assert pusher.notices.qsize() == 2
        return
    consumers._count(["p.sockshop"], 1)  # a page's socket joined, as LiveConsumer.join counts it
    try:
        pusher.notice(project="sockshop", context="c-1")
        assert pusher.notices.get_nowait() == ("sockshop", "c-1", None)
    finally:
        consumers._count(["p.sockshop"], -1)
    pusher.notice(project="sockshop", context="c-1")
    assert pusher.notices.qsize() == 0


def test_a_logged_in_person_downloads_a_task_s_log_without_a_token(api, browser, sockshop, admin_user):
    from sequences.models import TaskLog

    context = api.trigger()
    task = current_task(context)
    TaskLog.objects.create(task=task, text="step 1 done\nstep 2 done\n", total_bytes=24)
    response = browser.get(f"/bridge/project/sockshop/sequence/{context}/task/{task.triggered_id}/log",
                           {"download": "1"})
    assert (response.status_code, response["Content-Type"]) == (200, "text/plain; charset=utf-8")
    assert response["Content-Disposition"] == f'attachment; filename="deployment-{task.triggered_id}.log"'
    assert response.content.decode() == "step 1 done\nstep 2 done\n"
    other = browser.get(f"/bridge/project/sockshop/sequence/{uuid.uuid4()}/task/{task.triggered_id}/log")
    assert other.status_code == 404
    assert Client().get(f"/bridge/project/sockshop/sequence/{context}/task/{task.triggered_id}/log").status_code == 302


def test_the_list_and_the_page_say_who_triggered_each_sequence(api, browser, sockshop):
    from_api = api.trigger(tag="1.0")  # its event's source: "test"; sent with the operator's token "tests"
    made = browser.post("/bridge/project/sockshop/trigger", {"target": "dev|delivery", "service": "orders",
                                                            "image": "docker.io/keptnexamples/orders", "tag": "2.0"})
    from_bridge = made["Location"].rstrip("/").rsplit("/", 1)[-1]
    rows = browser.get("/bridge/project/sockshop/sequence/").content.decode()
    by = dict(re.findall(r'<tr id="row-([0-9a-f-]+)".*?<td data-label="Triggered by">([^<]*)</td>', rows, re.S))
    assert by == {from_api: "operator (token tests) via test", from_bridge: "bridge (admin-user)"}
    page = browser.get(f"/bridge/project/sockshop/sequence/{from_bridge}").content.decode()
    assert re.search(r'Triggered by bridge \(admin-user\) at <time', page)
    page = browser.get(f"/bridge/project/sockshop/sequence/{from_api}").content.decode()
    assert re.search(r'Triggered by operator \(token tests\) via test at <time', page)


def test_a_lane_s_deployment_history_says_what_was_deployed_when_how_and_by_whom(api, browser, sockshop):
    first = api.trigger(tag="1.0")
    api.finish(current_task(first))  # the deployment passed
    api.post(f"/api/controlPlane/v1/sequence/sockshop/{first}/control", {"state": "abort", "mode": "force"})
    second = api.trigger(tag="2.0")
    api.finish(current_task(second), result="fail")
    lane = browser.get("/bridge/project/sockshop/").content.decode()
    lane = lane[lane.index('id="lane-dev-carts"'):lane.index('id="lane-staging-carts"')]
    link = "/bridge/project/sockshop/stage/dev/service/carts/deployments"
    assert f'href="{link}">Deployment history →</a>' in lane
    page = browser.get(link).content.decode()
    rows = re.findall(r'<tr class="deployment-row">(.*?)</tr>', page, re.S)
    plain = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", row)).strip() for row in rows]
    assert [(second[:8] in p, "carts:2.0" in p, "failed" in p) for p in plain[:1]] == [(True, True, True)]
    assert [(first[:8] in p, "carts:1.0" in p, "passed" in p, "test" in p) for p in plain[1:]] == [
        (True, True, True, True)]
    assert "Deployed now:" in page and "carts:1.0" in re.sub(r"<[^>]+>", "", page.split("Deployed now:")[1][:400])
    assert browser.get("/bridge/project/sockshop/stage/qa/service/carts/deployments").status_code == 404
