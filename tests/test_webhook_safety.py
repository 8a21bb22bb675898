"""Webhooks reach public receivers only, say nothing of what a receiver answered, and one slow receiver holds up
nobody else's deliveries."""

import ipaddress
import socket
import threading
import time

import pytest

from sequences.notices import sending as delivering
from sequences.notices.outbox import Delivery, Webhook
from tests.test_webhooks import SECRET, Receiver, add_webhook

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/", "http://127.1/", "http://2130706433/", "http://0x7f000001/", "http://localhost/",
    "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/", "http://192.168.0.1/", "http://172.16.0.1/", "http://0.0.0.0/", "http://[::]/",
    "http://100.64.0.1/",
])
def test_a_webhook_to_an_address_that_is_not_public_is_refused(admin_api, sockshop, url):
    response = admin_api.post("/api/controlPlane/v1/project/sockshop/webhook", {"url": url, "secret": SECRET})
    assert response.status_code == 400
    assert "not a public address" in response.json()["message"]
    assert not Webhook.objects.exists()


def test_an_allowed_internal_network_may_be_reached(admin_api, sockshop, settings):
    settings.BOSUN_WEBHOOK_ALLOWED = [ipaddress.ip_network("10.1.2.0/24")]
    assert admin_api.post("/api/controlPlane/v1/project/sockshop/webhook",
                          {"url": "http://10.1.2.3/hook"}).status_code == 201
    assert admin_api.post("/api/controlPlane/v1/project/sockshop/webhook",
                          {"url": "http://10.1.3.3/hook"}).status_code == 400


def test_the_address_is_checked_again_before_each_attempt(api, admin_api, sockshop, settings):
    listening = Receiver()
    try:
        settings.BOSUN_WEBHOOK_ALLOWED = LOOPBACK
        hook = add_webhook(admin_api, listening.url, ["sh.keptn.event.dev.delivery.triggered"])
        settings.BOSUN_WEBHOOK_ALLOWED = []  # as if the name now pointed somewhere internal
        api.trigger(tag="1")
        assert delivering.send_due() == 1
    finally:
        listening.close()
    delivery = Delivery.objects.get(webhook_id=hook["id"])
    assert listening.requests == []
    assert delivery.last_error == ("not sent: 127.0.0.1 is 127.0.0.1, not a public address: Bosun sends webhooks "
                                   "to public receivers only (an admin may allow internal networks with "
                                   "BOSUN_WEBHOOK_ALLOWED).")


def test_what_a_receiver_answers_is_never_shown_and_failures_look_alike(api, admin_api, viewer_api, sockshop,
                                                                       settings):
    settings.BOSUN_WEBHOOK_ALLOWED = LOOPBACK
    failing = Receiver(answers=[500])
    try:
        talkative = add_webhook(admin_api, failing.url, ["sh.keptn.event.dev.delivery.triggered"])
        closed = add_webhook(admin_api, f"http://127.0.0.1:{closed_port()}/", ["sh.keptn.event.dev.delivery.triggered"])
        api.trigger(tag="1")
        assert delivering.send_due() == 2
    finally:
        failing.close()
    path = "/api/controlPlane/v1/project/sockshop/webhook/{}/delivery"
    errors = {name: viewer_api.get(path.format(hook["id"])).json()["deliveries"][0]["lastError"]
              for name, hook in (("talkative", talkative), ("closed", closed))}
    assert errors == {"talkative": "the receiver answered 500", "closed": "the receiver could not be reached"}
    hooks = viewer_api.get("/api/controlPlane/v1/project/sockshop/webhook").json()["webhooks"]
    assert all("secret" not in hook and "secretPrefix" not in hook for hook in hooks)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dripping:
    """A receiver that answers one byte at a time, a byte every 0.2 s (for at most a minute)."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/drip"
        self.connected = threading.Event()
        self.closing = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.closing.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn):
        self.connected.set()
        with conn:
            for byte in (b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 300):
                if self.closing.wait(0.2):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def close(self):
        self.closing.set()
        self.server.close()


def test_an_attempt_has_one_deadline_for_all_of_it(api, admin_api, sockshop, settings):
    settings.BOSUN_WEBHOOK_ALLOWED = LOOPBACK
    settings.BOSUN_WEBHOOK_TIMEOUT = 1.0
    drip = Dripping()
    try:
        hook = add_webhook(admin_api, drip.url, ["sh.keptn.event.dev.delivery.triggered"])
        api.trigger(tag="1")
        assert delivering.send_due() == 1
    finally:
        drip.close()
    delivery = Delivery.objects.get(webhook_id=hook["id"])
    assert (delivery.state, delivery.last_error) == ("pending", "the receiver did not answer within 1s")


@pytest.mark.django_db(transaction=True)
def test_a_slow_receiver_holds_up_no_other_receiver(api, admin_api, sockshop, settings):
    settings.BOSUN_WEBHOOK_ALLOWED = LOOPBACK
    settings.BOSUN_WEBHOOK_TIMEOUT = 30.0
    drip, fast = Dripping(), Receiver()
    sender = delivering.Sender()
    try:
        slow_hook = add_webhook(admin_api, drip.url, ["sh.keptn.event.dev.delivery.triggered"])
        fast_hook = add_webhook(admin_api, fast.url, ["sh.keptn.event.dev.delivery.triggered"])
        api.trigger(tag="1")
        assert sender.turn() == 2
        assert drip.connected.wait(10)
        sender.busy[fast_hook["id"]].join(10)  # the fast receiver answered and its outcome is written
        assert len(fast.requests) == 1
        deadline = time.monotonic() + 10
        assert sender.busy[slow_hook["id"]].is_alive()  # still dripping
        api.trigger(tag="2", service="orders")
        assert sender.turn() == 1  # the fast one's next delivery goes; the slow one's waits its turn
        while len(fast.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(fast.requests) == 2
    finally:
        drip.close()
        for worker in list(sender.busy.values()):
            worker.join(10)
        fast.close()
