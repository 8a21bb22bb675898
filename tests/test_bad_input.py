"""Bad input on every writing endpoint: truncated, non-JSON, empty, 10,000 levels deep, oversized, and names
with NUL, control, SQL, HTML and non-ASCII characters. Each is answered 4xx with Keptn's error shape and a
message that says what to fix, and nothing stored changes."""

import json
import uuid

import pytest

from sequences.models import ApiToken, ControlAction, Event, Project, SequenceExecution, Service, TaskExecution
from sequences.notices.outbox import Delivery, Webhook
from sequences.registrations import Integration
from tests.helpers import current_task

TRIGGERED = "sh.keptn.event.dev.delivery.triggered"

BODIES = {  # raw request bodies that no endpoint can take
    "truncated JSON": '{"name": "carts", "shipyard": "apiVersion',
    "not JSON": "name=carts&shipyard=x",
    "empty": "",
    "nested 10,000 levels": "[" * 10_000 + "]" * 10_000,
    "over a MiB": json.dumps({"name": "x" * (1 << 20)}),
    "not UTF-8": b'{"name": "\xff\xfe"}',
}
NAMES = {  # names no project, service, stage or integration may have
    "NUL": "sock\u0000shop",
    "a control character": "car\u0007ts",
    "SQL": "x'; DROP TABLE sequences_event;--",
    "HTML": "<script>alert(1)</script>",
    "non-ASCII": "cärts🚀",
    "a path": "../../etc/passwd",
}


def stored():
    """Everything a refused request must leave as it was."""
    counts = tuple(model.objects.count() for model in (
        Project, Service, SequenceExecution, TaskExecution, Event, ControlAction, ApiToken, Integration, Webhook,
        Delivery))
    states = tuple(SequenceExecution.objects.order_by("id").values_list("state", "holds_lane"))
    tasks = tuple(TaskExecution.objects.order_by("id").values_list("state", "result"))
    return counts, states, tasks, tuple(Project.objects.order_by("id").values_list("name", "shipyard", "jobs"))


@pytest.fixture
def world(admin_api, sockshop):
    context = admin_api.trigger(tag="1")
    task = current_task(context)
    admin_api.trigger(tag="2")  # waiting behind it
    return {"context": context, "task": task.triggered_id}


def endpoints(world):
    """(path, body with the name in it) for each endpoint that takes a name."""
    return {
        "trigger": ("/api/v1/event", lambda n: {
            "specversion": "1.0", "id": str(uuid.uuid4()), "source": "t", "type": TRIGGERED,
            "data": {"project": "sockshop", "stage": "dev", "service": n}}),
        "batch": ("/api/v1/event", lambda n: [{
            "specversion": "1.0", "id": str(uuid.uuid4()), "source": "t", "type": TRIGGERED,
            "data": {"project": n, "stage": "dev", "service": "carts"}}]),
        "project": ("/api/controlPlane/v1/project", lambda n: {"name": n, "shipyard": "apiVersion: x"}),
        "service": ("/api/controlPlane/v1/project/sockshop/service", lambda n: {"serviceName": n}),
        "control": (f"/api/controlPlane/v1/sequence/sockshop/{world['context']}/control",
                    lambda n: {"state": "pause", "stage": n}),
        "finish": (f"/api/controlPlane/v1/task/{world['task']}/finish",
                   lambda n: {"result": n, "status": "succeeded", "reason": "r"}),
        "integration": ("/api/controlPlane/v1/uniform/registration",
                        lambda n: {"name": n, "metadata": {"hostname": "h"}}),
        "webhook": ("/api/controlPlane/v1/project/sockshop/webhook", lambda n: {"url": f"http://hooks.example/{n}"}),
    }


def refused(response, code):
    assert response.status_code == code, (response.status_code, response.content[:300])
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"].strip()
    return body["message"]


def body_answer(endpoint: str, kind: str) -> int:
    """A body no endpoint can read is a 400; over a MiB, the event intake answers 413 before reading it (the
    others read it, and refuse the name in it)."""
    return 413 if (endpoint, kind) == ("trigger", "over a MiB") else 400


def name_answer(endpoint: str, kind: str) -> int:
    """An odd name is a 400 where a name is made (project, service, integration, webhook, a finish's result);
    where a name looks something up (a trigger's service, a control's stage) it is not found: 404. A NUL is
    refused before anything is looked up."""
    if endpoint in ("trigger", "control") and not (endpoint == "trigger" and kind == "NUL"):
        return 404
    return 400


def test_unreadable_bodies_are_refused_everywhere_and_change_nothing(admin_api, world):
    before = stored()
    for endpoint, (path, _) in endpoints(world).items():
        content_type = "application/cloudevents-batch+json" if endpoint == "batch" else "application/json"
        for kind, raw in BODIES.items():
            message = refused(admin_api.post(path, raw, content_type=content_type), body_answer(endpoint, kind))
            assert "Cannot parse" not in message, (endpoint, kind, message)
            assert message != "Invalid request: Field required", (endpoint, kind, message)
    assert stored() == before


def test_names_with_odd_characters_are_refused_everywhere_and_change_nothing(admin_api, world):
    before = stored()
    for endpoint, (path, body) in endpoints(world).items():
        content_type = "application/cloudevents-batch+json" if endpoint == "batch" else "application/json"
        for kind, name in NAMES.items():
            if endpoint == "webhook" and kind == "a path":
                continue  # a URL's path may well climb
            response = admin_api.post(path, json.dumps(body(name)), content_type=content_type)
            if endpoint == "batch":  # one answer per event, in a 207 or 400 as a whole
                answers = response.json()
                assert response.status_code < 500
                assert all(400 <= a["status"] < 500 for a in answers), (kind, answers)
                continue
            refused(response, name_answer(endpoint, kind))
    assert stored() == before


def test_a_huge_label_map_is_refused_whole(admin_api, world):
    before = stored()
    response = admin_api.post("/api/v1/event", {
        "specversion": "1.0", "id": "labels-1", "source": "t", "type": "sh.keptn.event.dev.delivery.triggered",
        "data": {"project": "sockshop", "stage": "dev", "service": "carts",
                 "labels": {f"label-{i}": "v" for i in range(10_000)}}})
    assert "bytes" in refused(response, 413)
    assert stored() == before


def test_refused_messages_say_what_to_fix(admin_api, world):
    path = "/api/controlPlane/v1/project"
    assert "not valid JSON" in refused(admin_api.post(path, BODIES["truncated JSON"]), 400)
    assert "line 1, column" in refused(admin_api.post(path, BODIES["truncated JSON"]), 400)
    assert "empty" in refused(admin_api.post(path, ""), 400)
    assert "too deeply" in refused(admin_api.post(path, BODIES["nested 10,000 levels"]), 400)
    assert "U+0007" in refused(admin_api.post("/api/controlPlane/v1/uniform/registration",
                                              {"name": "car\u0007ts"}), 400)
    assert "percent-encode" in refused(admin_api.post("/api/controlPlane/v1/project/sockshop/webhook",
                                                      {"url": "http://h/a b"}), 400)
