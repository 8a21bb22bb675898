"""POST /api/v1/event has a way in of its own (bridge/intake.py): it answers exactly as the rest of the API does,
and hands every unusual request to Django."""

import json
import uuid

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_started
from django.test import Client

from bridge.asgi import application
from bridge.intake import EventIntake
from sequences.configuration import create_project
from sequences.models import ApiToken, ControlAction, Event, SequenceExecution, TaskExecution

from .helpers import one_stage_shipyard

pytestmark = pytest.mark.django_db(transaction=True)  # the ASGI path may run on another thread


def asgi_post(body, headers=None, host="127.0.0.1", scheme="http", path="/api/v1/event", method="POST", app=None):
    """A request through the ASGI application a server runs (daphne), with the Django requests it started."""
    started = []

    def count(**_):
        started.append(1)

    async def post():
        transport = httpx.ASGITransport(app=app or application, client=("127.0.0.9", 4711))
        async with httpx.AsyncClient(transport=transport, base_url=f"{scheme}://{host}") as client:
            return await client.request(method, path, content=body, headers=headers or {})

    request_started.connect(count)
    try:
        response = async_to_sync(post)()
    finally:
        request_started.disconnect(count)
    return response, len(started)


def django_post(body, headers=None, host="127.0.0.1", path="/api/v1/event"):
    """The same POST through Django's own request cycle (middleware, django-ninja)."""
    meta = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in (headers or {}).items()
            if name.lower() != "content-type"}
    content_type = (headers or {}).get("Content-Type", "application/json")
    return Client(HTTP_HOST=host, REMOTE_ADDR="127.0.0.9").post(path, body, content_type=content_type, **meta)


def trigger(service="carts"):
    return json.dumps({"specversion": "1.0", "id": str(uuid.uuid4()), "source": "test",
                       "type": "sh.keptn.event.dev.delivery.triggered",
                       "data": {"project": "fast", "stage": "dev", "service": service}})


@pytest.fixture
def project(transactional_db):
    return create_project("fast", one_stage_shipyard("fast", [{"name": "deployment"}, {"name": "test"}]), services=["carts", "orders"])


@pytest.fixture
def token(operator_user):
    return ApiToken.issue(operator_user, "fast")[1]


def test_a_trigger_is_answered_without_a_django_request_and_with_the_api_s_headers(project, token):
    response, django_requests = asgi_post(trigger(), {"x-token": token, "Content-Type": "application/json"})

    assert response.status_code == 202, response.text
    assert django_requests == 0
    context = response.json()["keptnContext"]
    run = SequenceExecution.objects.get(context=context)
    assert (run.service, run.state) == ("carts", SequenceExecution.STARTED)
    assert run.task_executions.get().name == "deployment"

    through_django = django_post(trigger("orders"), {"x-token": token})
    assert through_django.status_code == 202
    assert set(through_django.json()) == set(response.json())
    same = {k.lower(): v for k, v in through_django.headers.items() if k.lower() != "content-length"}
    fast = {k.lower(): v for k, v in response.headers.items() if k.lower() != "content-length"}
    assert fast == same
    assert int(response.headers["content-length"]) == len(response.content)
    senders = Event.objects.filter(type="sh.keptn.event.dev.delivery.triggered").values_list("sent_by", flat=True)
    assert list(senders) == ["operator (token fast)"] * 2  # who sent it, kept either way in


def test_a_bearer_token_and_a_task_s_events_take_the_same_way(project, token):
    response, _ = asgi_post(trigger(), {"Authorization": f"Bearer {token}"})
    context = response.json()["keptnContext"]
    task = TaskExecution.objects.get(sequence_execution__context=context)

    for kind in ("started", "finished"):
        event = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "executor", "shkeptncontext": context,
                 "type": f"sh.keptn.event.deployment.{kind}", "triggeredid": task.triggered_id,
                 "data": {"result": "pass", "status": "succeeded"}}
        answer, django_requests = asgi_post(json.dumps(event), {"x-token": token})
        assert (answer.status_code, django_requests) == (202, 0), answer.text

    task.refresh_from_db()
    assert task.state == TaskExecution.FINISHED
    assert TaskExecution.objects.get(sequence_execution__context=context, name="test").state == TaskExecution.TRIGGERED


def test_a_batch_is_answered_event_by_event(project, token):
    events = [json.loads(trigger()), {"type": "sh.keptn.event.dev.delivery.triggered", "id": "x"}]
    response, django_requests = asgi_post(json.dumps(events), {
        "x-token": token, "Content-Type": "application/cloudevents-batch+json"})

    assert (response.status_code, django_requests) == (207, 0)
    assert [a["status"] for a in response.json()] == [202, 400]
    assert SequenceExecution.objects.count() == 1


def test_a_duplicate_and_a_refused_event_get_the_same_answers_as_through_django(project, token):
    body = trigger()
    first, _ = asgi_post(body, {"x-token": token})
    again, _ = asgi_post(body, {"x-token": token})
    through_django = django_post(body, {"x-token": token})
    assert first.status_code == 202
    assert (again.status_code, again.json()) == (through_django.status_code, through_django.json())
    assert again.json()["duplicate"] is True

    unknown = json.dumps({"specversion": "1.0", "id": "e-1", "source": "x", "type": "sh.keptn.event.test.finished",
                          "triggeredid": str(uuid.uuid4()), "data": {}})
    refused, django_requests = asgi_post(unknown, {"x-token": token})
    assert (refused.status_code, django_requests) == (409, 0)
    assert "No task was triggered" in refused.json()["message"]
    assert Event.objects.filter(event_id="e-1", outcome=Event.REJECTED).count() == 1


UNUSUAL = {
    "no token": (lambda t: trigger(), {}),
    "an unknown token": (lambda t: trigger(), {"x-token": "not-a-token"}),
    "a token without the permission": (lambda t: trigger(), "viewer"),
    "a body that is not JSON": (lambda t: "{not json", None),
    "an event as a list": (lambda t: "[]", None),
    "a body over 64 KiB": (lambda t: json.dumps({"type": "x", "data": {"pad": "a" * 70_000}}), None),
    "a content type it does not take": (lambda t: trigger(), {"Content-Type": "text/html"}),
    "a batch that is not a list": (lambda t: "{}", {"Content-Type": "application/cloudevents-batch+json"}),
}


@pytest.mark.parametrize("case", UNUSUAL)
def test_unusual_requests_are_answered_by_django_as_before(project, token, viewer_user, case):
    body, headers = UNUSUAL[case]
    if headers == "viewer":
        headers = {"x-token": ApiToken.issue(viewer_user, "viewer")[1]}
    headers = {"x-token": token, "Content-Type": "application/json", **(headers or {})}
    if case in ("no token", "an unknown token"):
        headers = {k: v for k, v in headers.items() if k != "x-token" or case == "an unknown token"}
    stored = Event.objects.count(), SequenceExecution.objects.count()

    response, django_requests = asgi_post(body(token), headers)
    expected = django_post(body(token), headers)

    assert django_requests == 1
    assert 400 <= response.status_code < 500
    assert (response.status_code, response.json()) == (expected.status_code, expected.json())
    assert (Event.objects.count(), SequenceExecution.objects.count()) == stored


def test_a_host_django_refuses_is_refused(project, token):
    response, django_requests = asgi_post(trigger(), {"x-token": token}, host="evil.example")
    assert (response.status_code, django_requests) == (400, 1)
    assert SequenceExecution.objects.count() == 0


def test_https_redirects_and_hsts_are_kept(project, token, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    app = EventIntake(ASGIHandler())  # Django's middleware reads these settings when it is built
    plain, django_requests = asgi_post(trigger(), {"x-token": token}, app=app)
    assert (plain.status_code, django_requests) == (301, 1)
    assert plain.headers["location"].startswith("https://")

    secure, django_requests = asgi_post(trigger(), {"x-token": token}, scheme="https", app=app)
    assert (secure.status_code, django_requests) == (202, 0)
    assert secure.headers["strict-transport-security"] == "max-age=3600"
    assert SequenceExecution.objects.count() == 1


def test_other_requests_go_to_django(project, token):
    asgi_post(trigger(), {"x-token": token})
    response, django_requests = asgi_post(None, {"x-token": token}, method="GET")
    assert (response.status_code, django_requests) == (200, 1)
    assert [e["type"] for e in response.json()["events"]] == [
        "sh.keptn.event.dev.delivery.triggered", "sh.keptn.event.deployment.triggered"]


def control_url(context):
    return f"/api/controlPlane/v1/sequence/fast/{context}/control"


def test_pause_resume_and_abort_are_answered_here_as_through_django(project, token, operator_user):
    first, _ = asgi_post(trigger(), {"x-token": token})
    second = django_post(trigger("orders"), {"x-token": token})
    fast_context, django_context = first.json()["keptnContext"], second.json()["keptnContext"]

    for body in ({"state": "pause", "reason": "look first"}, {"state": "pause"}, {"state": "resume"},
                 {"state": "abort", "mode": "force"}, {"state": "resume"}):
        headers = {"x-token": token, "X-Bosun-Source": "cli"}
        fast, django_requests = asgi_post(json.dumps(body), headers, path=control_url(fast_context))
        through_django = django_post(json.dumps(body), headers, path=control_url(django_context))
        assert django_requests == 0
        assert fast.status_code == through_django.status_code, (body, fast.json(), through_django.json())
        assert set(fast.json()) == set(through_django.json())
        assert fast.json().get("state") == through_django.json().get("state")

    assert [r.state for r in SequenceExecution.objects.order_by("id")] == [SequenceExecution.ABORTED] * 2
    actions = {a.context: a for a in ControlAction.objects.filter(command="pause", reason="look first")}
    assert (actions[fast_context].actor, actions[fast_context].source) == (
        actions[django_context].actor, actions[django_context].source) == ("operator (token fast)", "cli")


def test_a_repeated_idempotency_key_gets_the_first_answer(project, token):
    context = asgi_post(trigger(), {"x-token": token})[0].json()["keptnContext"]
    headers = {"x-token": token, "Idempotency-Key": "k-1"}
    first, _ = asgi_post(json.dumps({"state": "pause"}), headers, path=control_url(context))
    again, django_requests = asgi_post(json.dumps({"state": "pause"}), headers, path=control_url(context))
    assert (first.status_code, again.status_code, django_requests) == (200, 200, 0)
    assert again.json() == first.json()
    assert ControlAction.objects.filter(idempotency_key="k-1").count() == 1


@pytest.mark.parametrize("body", ['{"state": "stop"}', "{", "[]", '{"state": "abort", "mode": "hard"}', ""])
def test_a_control_command_django_must_explain_is_handed_to_it(project, token, body):
    context = asgi_post(trigger(), {"x-token": token})[0].json()["keptnContext"]
    response, django_requests = asgi_post(body, {"x-token": token}, path=control_url(context))
    expected = django_post(body, {"x-token": token}, path=control_url(context))
    assert (response.status_code, response.json()) == (expected.status_code, expected.json())
    assert (response.status_code, django_requests) == (400, 1)
    assert SequenceExecution.objects.get(context=context).state == SequenceExecution.STARTED
    assert not ControlAction.objects.exists()


def test_control_of_a_context_that_does_not_exist_is_404(project, token):
    response, django_requests = asgi_post('{"state": "pause"}', {"x-token": token}, path=control_url(uuid.uuid4()))
    assert (response.status_code, django_requests) == (404, 0)
    assert response.json()["code"] == 404


def test_a_valid_token_is_answered_on_the_fast_path_from_an_address_that_guessed_too_often(project, token,
                                                                                         settings):
    settings.BOSUN_THROTTLE_FAILURES = 3
    for _ in range(3):
        assert asgi_post(trigger(), {"x-token": "bsn_guess", "Content-Type": "application/json"})[0].status_code == 401
    assert asgi_post(trigger(), {"x-token": "bsn_guess", "Content-Type": "application/json"})[0].status_code == 429

    response, django_requests = asgi_post(trigger(), {"x-token": token, "Content-Type": "application/json"})

    assert (response.status_code, django_requests) == (202, 0)


def test_every_middleware_is_accounted_for_on_the_fast_way_in(settings):
    from bridge.intake import MIDDLEWARE_ACCOUNTED_FOR

    missing = [name for name in settings.MIDDLEWARE if name not in MIDDLEWARE_ACCOUNTED_FOR]
    gone = [name for name in MIDDLEWARE_ACCOUNTED_FOR if name not in settings.MIDDLEWARE]
    assert not missing and not gone, (
        f"MIDDLEWARE changed: {missing or ''} {gone or ''}. POST /api/v1/event and the control path skip Django's "
        "middleware (bridge/intake.py): do what the new middleware does there too (or say why it need not), "
        "and update MIDDLEWARE_ACCOUNTED_FOR.")


def test_an_event_refused_by_the_work_is_answered_by_django_with_nothing_applied(project, token):
    """The work raises HttpError only before it applies anything: Django then answers the same request."""
    before = (Event.objects.count(), SequenceExecution.objects.count())
    response, django_requests = asgi_post('{"type": "sh.keptn.event.dev.delivery.triggered", ',
                                          {"x-token": token, "Content-Type": "application/json"})
    assert (response.status_code, django_requests) == (400, 1)
    assert response.json()["message"] == "The body is not valid JSON."
    assert (Event.objects.count(), SequenceExecution.objects.count()) == before
