"""A walk of every route: each mutating endpoint and each socket needs authentication, viewers cannot change
anything, and nothing stored changes when a request is refused."""

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from bridge.asgi import application
from sequences.api import api
from sequences.models import ApiToken, ControlAction, Event, Project, SequenceExecution, TaskExecution
from sequences.notices.outbox import Delivery, Webhook
from sequences.registrations import Integration
from tests.helpers import current_task

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# Endpoints a viewer may POST to, and why: they change nothing.
VIEWER_MAY = {("POST", "/api/v1/auth"): "Keptn's token check; it answers who the token belongs to"}


def snapshot():
    return tuple(model.objects.count() for model in (
        Project, SequenceExecution, TaskExecution, Event, ControlAction, ApiToken, Integration, Webhook, Delivery)) + tuple(
        SequenceExecution.objects.values_list("state", flat=True).order_by("id"))


@pytest.fixture
def world(api, admin_api, sockshop):
    """A project, a running sequence with an open task, and a registered integration: real ids for every path."""
    context = api.trigger(tag="1")
    task = current_task(context)
    integration = api.post("/api/controlPlane/v1/uniform/registration", {
        "name": "helm", "metadata": {"hostname": "h"},
        "subscriptions": [{"id": "sub-1", "event": "sh.keptn.event.deployment.triggered"}]}).json()["id"]
    hook = admin_api.post("/api/controlPlane/v1/project/sockshop/webhook", {"url": "https://hooks.example.com/hook"}).json()["id"]
    api.trigger(tag="2")  # an event for the webhook: one delivery
    delivery = Delivery.objects.get(webhook_id=hook, event__type__endswith=".delivery.triggered")
    return {"project": "sockshop", "keptnContext": context, "webhookId": str(hook), "deliveryId": str(delivery.id), "triggeredId": task.triggered_id, "service": "carts",
            "stage": "dev", "eventType": "sh.keptn.event.deployment.triggered", "integrationID": integration,
            "subscriptionID": "sub-1", "name": "freeze"}


def operations(values):
    schema = api.get_openapi_schema(path_prefix="/api")
    for template, methods in schema["paths"].items():
        path = template
        for key, value in values.items():
            path = path.replace("{" + key + "}", value)
        assert "{" not in path, f"no value for a parameter of {template}"
        for method in methods:
            yield method.upper(), template, path


def send(client: Client, method: str, path: str, headers=None):
    # a body every endpoint would take, so that only the permission can refuse it
    body = {"state": "pause", "serviceName": "x", "name": "x", "shipyard": "x", "result": "pass",
            "status": "succeeded", "reason": "r", "executor": "e", "event": "sh.keptn.event.x.triggered",
            "text": "a line\n", "url": "http://127.0.0.1:9/other", "stage": "dev"}
    kwargs = {"content_type": "application/json", **(headers or {})}
    if method == "GET":
        return client.get(path, **(headers or {}))
    return getattr(client, method.lower())(path, body, **kwargs)


def test_every_api_operation_needs_a_token(world):
    before = snapshot()
    anonymous = Client()
    checked = 0
    for method, template, path in operations(world):
        response = send(anonymous, method, path)
        assert response.status_code == 401, f"{method} {template} answered {response.status_code} without a token"
        assert response.json()["code"] == 401
        checked += 1
    assert checked >= 40
    assert snapshot() == before


def test_a_viewer_can_read_but_change_nothing(world, viewer_user):
    viewer = {"HTTP_X_TOKEN": ApiToken.issue(viewer_user, "look")[1]}
    before = snapshot()
    client = Client()
    refused = 0
    for method, template, path in operations(world):
        if method not in MUTATING or (method, template) in VIEWER_MAY:
            continue
        response = send(client, method, path, viewer)
        assert response.status_code == 403, f"a viewer's {method} {template} answered {response.status_code}"
        refused += 1
    assert refused >= 20
    assert snapshot()[:-1] == before[:-1] and snapshot()[-1] == before[-1]


def test_every_bridge_page_needs_a_login_and_a_viewer_cannot_control(world, viewer_user):
    values = {"project": "sockshop", "context": world["keptnContext"], "stage": "dev",
              "event_id": world["triggeredId"], "triggered_id": world["triggeredId"], "command": "kill",
              "token_id": "1", "service": "carts"}
    routes = []

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if str(pattern.pattern) in ("admin/", "api/", "accounts/"):
                    continue
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                routes.append(prefix + str(pattern.pattern))
    walk(get_resolver().url_patterns)
    bridge = [r for r in routes if r.startswith("bridge/")]
    assert len(bridge) >= 10
    before = snapshot()
    anonymous, viewer = Client(), Client()
    viewer.force_login(viewer_user)
    for route in bridge:
        path = "/" + route
        for key, value in values.items():
            path = path.replace(f"<str:{key}>", value).replace(f"<int:{key}>", value)
        assert "<" not in path, route
        for method in ("get", "post"):
            response = getattr(anonymous, method)(path, {"state": "abort", "mode": "force", "reason": "x"})
            assert response.status_code in (302, 405), f"{method} {path} without a login: {response.status_code}"
            if response.status_code == 302:
                assert response["Location"].startswith("/accounts/login/")
        response = viewer.post(path, {"state": "abort", "mode": "force", "reason": "x", "result": "pass",
                                      "target": "dev|delivery", "service": "carts", "image": "a", "tag": "1"})
        assert response.status_code in (302, 400, 403, 404, 405), f"a viewer's POST {path}: {response.status_code}"
    assert snapshot() == before


def test_admin_needs_staff(world, viewer_user):
    viewer = Client()
    viewer.force_login(viewer_user)
    for path in ("/admin/", "/admin/sequences/sequenceexecution/", "/admin/sequences/apitoken/"):
        assert Client().get(path).status_code == 302
        assert viewer.get(path).status_code == 302  # not staff: sent to the admin's login


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_every_socket_needs_authentication():
    for path in ("/ws/live/?project=sockshop", "/ws/executor/"):
        communicator = WebsocketCommunicator(application, path, headers=[
            (b"origin", b"http://testserver"), (b"host", b"testserver")])
        connected, _ = await communicator.connect()
        assert not connected, f"{path} accepted a socket with no session and no token"
        await communicator.disconnect()
