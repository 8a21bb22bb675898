"""Webhooks: a project's events reach a real HTTP receiver, signed, retried with backoff, logged; a failing or
hanging receiver never slows intake, and bad webhooks are refused with nothing stored."""

import hashlib
import hmac
import io
import ipaddress
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from sequences.notices import sending as delivering
from sequences.notices.outbox import Delivery, Webhook
from tests.helpers import current_task

SECRET = "a-shared-secret-of-some-length"


@pytest.fixture(autouse=True)
def receivers_on_this_machine(settings):
    """The test receivers listen on loopback, which webhooks may reach only when an admin allows it."""
    settings.BOSUN_WEBHOOK_ALLOWED = [ipaddress.ip_network("127.0.0.0/8")]


class Receiver:
    """A real HTTP server on a free port: records each request, answers what `answers` says (then 200)."""

    def __init__(self, answers=(), delay=0.0):
        self.requests, self.answers, self.delay = [], list(answers), delay
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                time.sleep(receiver.delay)
                code = receiver.answers.pop(0) if receiver.answers else 200
                try:
                    self.send_response(code)
                    self.end_headers()
                    self.wfile.write(b"ok" if code < 300 else b"receiver is down")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting (a slow receiver's test): nobody reads the answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/bosun"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(answers=(), delay=0.0):
        made.append(Receiver(answers, delay))
        return made[-1]
    yield make
    for one in made:
        one.close()


def add_webhook(admin_api, url, events=None, **extra):
    response = admin_api.post("/api/controlPlane/v1/project/sockshop/webhook",
                              {"url": url, "secret": SECRET, **({"events": events} if events is not None else {}),
                               **extra})
    assert response.status_code == 201, response.json()
    return response.json()


def run_delivery(api, context):
    for _ in range(4):
        api.finish(current_task(context))


def test_finished_events_reach_the_receiver_signed_and_as_stored(api, admin_api, sockshop, receiver):
    listening = receiver()
    hook = add_webhook(admin_api, listening.url, ["sh.keptn.event.*.finished"])
    assert hook["secret"] == SECRET and hook["events"] == ["sh.keptn.event.*.finished"]

    context = api.trigger(tag="1")
    run_delivery(api, context)
    assert listening.requests == []  # intake only writes the delivery; the engine's sender sends it
    wanted = Delivery.objects.filter(webhook_id=hook["id"]).select_related("event")
    types = [d.event.type for d in wanted.order_by("id")]
    assert types and all(t.endswith(".finished") for t in types)
    assert "sh.keptn.event.dev.delivery.finished" in types

    assert delivering.send_due() == len(types)
    assert len(listening.requests) == len(types)
    for request, delivery in zip(listening.requests, wanted.order_by("id")):
        headers, body = request["headers"], request["body"]
        stamp = headers["X-Bosun-Timestamp"]
        expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Bosun-Signature"], "sha256=" + expected)
        assert headers["Content-Type"] == "application/cloudevents+json"
        assert json.loads(body) == delivery.event.payload
        assert headers["X-Bosun-Event"] == delivery.event.type
    assert set(wanted.values_list("state", flat=True)) == {"delivered"}

    log = api.get(f"/api/controlPlane/v1/project/sockshop/webhook/{hook['id']}/delivery").json()
    assert {row["state"] for row in log["deliveries"]} == {"delivered"}
    assert log["deliveries"][0]["lastStatus"] == 200
    assert "secret" not in api.get("/api/controlPlane/v1/project/sockshop/webhook").json()["webhooks"][0]


def test_a_failing_receiver_is_tried_again_later_with_backoff(api, admin_api, sockshop, receiver):
    flaky = receiver(answers=[500, 503])
    hook = add_webhook(admin_api, flaky.url, ["sh.keptn.event.dev.delivery.triggered"])
    api.trigger(tag="1")
    delivery = Delivery.objects.get(webhook_id=hook["id"])
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        assert delivering.send_due() == 1
        delivery.refresh_from_db()
        assert (delivery.state, delivery.attempts, delivery.last_status) == ("pending", 1, 500)
        assert "the receiver answered 500" in delivery.last_error
        assert delivery.next_attempt_at == start + timedelta(seconds=10)
        assert delivering.send_due() == 0  # not due yet
        clock.shift(timedelta(seconds=10))
        assert delivering.send_due() == 1
        delivery.refresh_from_db()
        assert (delivery.attempts, delivery.last_status) == (2, 503)
        assert delivery.next_attempt_at == start + timedelta(seconds=30)  # 10 s, then 20 s
        clock.shift(timedelta(seconds=20))
        assert delivering.send_due() == 1
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status, delivery.last_error) == ("delivered", 3, 200, "")
    assert len(flaky.requests) == 3
    assert len({r["headers"]["X-Bosun-Delivery"] for r in flaky.requests}) == 1  # the same delivery each time


def test_a_receiver_that_never_answers_well_is_given_up_and_can_be_sent_again(api, admin_api, sockshop, receiver):
    down = receiver(answers=[500] * delivering.MAX_ATTEMPTS)
    hook = add_webhook(admin_api, down.url, ["sh.keptn.event.dev.delivery.triggered"])
    api.trigger(tag="1")
    delivery = Delivery.objects.get(webhook_id=hook["id"])
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(delivering.MAX_ATTEMPTS):
            assert delivering.send_due() == 1
            clock.shift(timedelta(hours=1))
        assert delivering.send_due() == 0
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("failed", delivering.MAX_ATTEMPTS)

    path = f"/api/controlPlane/v1/project/sockshop/webhook/{hook['id']}/delivery"
    failed = api.get(path, state="failed").json()["deliveries"]
    assert [d["id"] for d in failed] == [delivery.id] and "500" in failed[0]["lastError"]
    assert api.post(f"{path}/{delivery.id}/retry").status_code == 403  # an operator may not; an admin may
    again = admin_api.post(f"{path}/{delivery.id}/retry")
    assert again.status_code == 200 and again.json()["state"] == "pending"
    assert delivering.send_due() == 1
    delivery.refresh_from_db()
    assert delivery.state == "delivered"
    assert admin_api.post(f"{path}/{delivery.id}/retry").status_code == 409


def test_a_hanging_receiver_never_slows_intake_and_times_out_in_the_sender(api, admin_api, sockshop, receiver,
                                                                          settings):
    settings.BOSUN_WEBHOOK_TIMEOUT = 0.3
    hanging = receiver(delay=2.0)
    hook = add_webhook(admin_api, hanging.url)  # every event
    contexts = [api.trigger(tag=str(n), service=service) for n, service in enumerate(["carts", "orders"] * 5)]
    assert len(set(contexts)) == 10
    assert hanging.requests == []  # no request of intake waited for the receiver
    pending = Delivery.objects.filter(webhook_id=hook["id"], state="pending")
    assert pending.count() >= 10

    sent = delivering.send_due()  # the sender's turn: each attempt gives up after the timeout
    assert sent >= 10
    tried = Delivery.objects.filter(webhook_id=hook["id"], attempts=1)
    assert tried.count() == sent
    assert set(tried.values_list("last_error", flat=True)) == {"the receiver did not answer within 0.3s"}


def test_only_what_was_stored_and_applied_is_sent(api, admin_api, sockshop, receiver):
    listening = receiver()
    hook = add_webhook(admin_api, listening.url)
    context = api.trigger(tag="1")
    task = current_task(context)
    api.finish(task)
    before = Delivery.objects.count()
    late = api.task_event(task, "finished", result="pass", status="succeeded")  # the task is closed: 409
    assert late.status_code == 409
    assert Delivery.objects.count() == before  # a rejected event is logged but not sent

    Webhook.objects.filter(id=hook["id"]).update(active=False)  # as another process would: no signal here
    api.trigger(tag="2", service="orders")
    assert Delivery.objects.count() == before  # the cached list is checked again by the insert itself


def test_a_webhook_for_another_project_or_other_events_gets_nothing(api, admin_api, sockshop, receiver):
    from tests.conftest import KEPTN_SHIPYARD

    made = admin_api.post("/api/controlPlane/v1/project", {"name": "other", "shipyard": KEPTN_SHIPYARD})
    assert made.status_code == 201
    other = admin_api.post("/api/controlPlane/v1/project/other/webhook", {"url": receiver().url}).json()
    approvals = add_webhook(admin_api, receiver().url, ["sh.keptn.event.approval.triggered"])
    api.trigger(tag="1")
    assert not Delivery.objects.filter(webhook_id__in=[other["id"], approvals["id"]]).exists()


@pytest.mark.parametrize("body, message", [
    ({"url": "ftp://example.com/x"}, "http or https"),
    ({"url": "not a url"}, "percent-encode"),
    ({"url": "hooks.example.com/x"}, "http or https"),
    ({"url": "http://"}, "http or https"),
    ({"url": "http://h/" + "x" * 600}, "url"),
    ({"url": "http://h/", "events": ["sh.keptn.event.<script>"]}, "is not an event type"),
    ({"url": "http://h/", "events": ["a"] * 21}, "events"),
    ({"url": "http://h/", "events": "sh.keptn.event.x.finished"}, "events"),
    ({"url": "http://h/", "secret": "short"}, "secret"),
    ({"url": "http://h/", "active": "yes"}, "active"),
    ({"events": []}, "url"),
])
def test_a_bad_webhook_is_refused_and_nothing_is_stored(admin_api, sockshop, body, message):
    response = admin_api.post("/api/controlPlane/v1/project/sockshop/webhook", body)
    assert response.status_code == 400, response.json()
    assert message in response.json()["message"]
    assert not Webhook.objects.exists()


def test_who_may_manage_webhooks(api, viewer_api, admin_api, sockshop):
    path = "/api/controlPlane/v1/project/sockshop/webhook"
    assert api.post(path, {"url": "http://127.0.0.1:9/"}).status_code == 403
    assert viewer_api.post(path, {"url": "http://127.0.0.1:9/"}).status_code == 403
    hook = add_webhook(admin_api, "http://127.0.0.1:9/")
    assert viewer_api.get(path).json()["webhooks"][0]["url"] == "http://127.0.0.1:9/"
    assert viewer_api.delete(f"{path}/{hook['id']}").status_code == 403
    changed = admin_api.put(f"{path}/{hook['id']}", {"active": False, "events": ["sh.keptn.event.>"]})
    assert changed.status_code == 200 and changed.json()["active"] is False
    assert admin_api.put(f"{path}/{hook['id']}", {"url": "gopher://x"}).status_code == 400
    assert Webhook.objects.get().url == "http://127.0.0.1:9/"
    assert admin_api.get(f"{path}/999999").status_code == 404
    assert admin_api.delete(f"{path}/{hook['id']}").status_code == 200
    assert not Webhook.objects.exists()


def test_the_engine_sends_due_deliveries(api, admin_api, sockshop, receiver):
    listening = receiver()
    add_webhook(admin_api, listening.url, ["sh.keptn.event.dev.delivery.triggered"])
    api.trigger(tag="1")
    call_command("run_engine", "--once", stdout=io.StringIO())
    assert len(listening.requests) == 1


def test_admin_shows_the_delivery_log_and_sends_again(api, admin_api, admin_user, sockshop, receiver):
    hook = add_webhook(admin_api, "http://127.0.0.1:9/unreachable", ["sh.keptn.event.dev.delivery.triggered"])
    api.trigger(tag="1")
    delivering.send_due()
    delivery = Delivery.objects.get(webhook_id=hook["id"])
    assert delivery.attempts == 1 and delivery.last_error
    browser = Client()
    browser.force_login(admin_user)
    page = browser.get(f"/admin/sequences/webhook/{hook['id']}/change/")
    assert page.status_code == 200
    assert b"sh.keptn.event.dev.delivery.triggered" in page.content and b"the receiver could not be reached" in page.content
    listing = browser.get("/admin/sequences/delivery/", {"state__exact": "pending"})
    assert listing.status_code == 200 and str(delivery.id).encode() in listing.content
    done = browser.post("/admin/sequences/delivery/", {"action": "send_again", "_selected_action": [delivery.id]},
                        follow=True)
    assert b"will be sent again" in done.content
    delivery.refresh_from_db()
    assert delivery.next_attempt_at <= timezone.now() and delivery.attempts == 0

    added = browser.post("/admin/sequences/webhook/add/", {
        "project": sockshop.id, "url": "https://hooks.example.com/bosun", "events": '["sh.keptn.event.>"]',
        "active": "on", "secret": "", "deliveries-TOTAL_FORMS": "0", "deliveries-INITIAL_FORMS": "0"})
    assert added.status_code == 302, added.content[:2000]
    made = Webhook.objects.get(url="https://hooks.example.com/bosun")
    assert made.secret.startswith("whsec_") and made.created_by == admin_user.username
    refused = browser.post("/admin/sequences/webhook/add/", {
        "project": sockshop.id, "url": "ftp://x", "events": "[]", "deliveries-TOTAL_FORMS": "0",
        "deliveries-INITIAL_FORMS": "0"})
    assert refused.status_code == 200 and b"http or https" in refused.content
