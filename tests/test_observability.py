"""/metrics in Prometheus' format, behind a token; one structured log line per transition, JSON on demand."""

import json
import logging

from django.test import Client

from sequences.notices.metrics import JsonFormatter
from tests.helpers import current_task


def scrape(headers) -> dict[str, float]:
    response = Client().get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    values = {}
    for line in response.content.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_metrics_need_a_token_and_count_what_happened(api, sockshop, django_capture_on_commit_callbacks):
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_X_TOKEN="bsn_wrong").status_code == 401
    with django_capture_on_commit_callbacks(execute=True):
        first = api.trigger(tag="1")
        waiting = api.trigger(tag="2")
        task = current_task(first)
        api.task_event(task, "started")
        api.finish(task)  # hands off to 'test'
    before = scrape(api.headers)
    assert before['bosun_sequences{project="sockshop",state="started"}'] == 1
    assert before['bosun_sequences{project="sockshop",state="waiting"}'] == 1
    assert before['bosun_transitions_total{kind="task.triggered"}'] >= 2
    assert before["bosun_handoff_seconds_count"] >= 1
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            api.finish(current_task(first), result="fail" if _ == 2 else "pass")
    after = scrape(api.headers)
    assert after["bosun_lane_wait_seconds_count"] > before["bosun_lane_wait_seconds_count"]  # the waiting one started
    assert after['bosun_sequences{project="sockshop",state="started"}'] >= 1
    assert waiting


def test_a_transition_is_one_log_line_with_its_fields_and_json_when_asked(api, sockshop, caplog,
                                                                           django_capture_on_commit_callbacks):
    with caplog.at_level(logging.INFO, logger="bosun.transitions"), django_capture_on_commit_callbacks(execute=True):
        context = api.trigger(tag="1")
    started = [r for r in caplog.records if getattr(r, "transition", {}).get("kind") == "sequence.started"]
    assert len(started) == 1
    line = json.loads(JsonFormatter().format(started[0]))
    assert line["kind"] == "sequence.started" and line["context"] == context
    assert (line["project"], line["stage"], line["service"], line["sequence"]) == ("sockshop", "dev", "carts",
                                                                                  "delivery")
    assert line["level"] == "INFO" and line["time"].endswith("Z")
    triggered = [r.transition for r in caplog.records if getattr(r, "transition", {}).get("kind") == "task.triggered"]
    assert triggered[0]["task"] == "deployment"


def test_a_refused_trigger_counts_nothing(api, sockshop, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        api.trigger(tag="1")
    before = scrape(api.headers)['bosun_transitions_total{kind="sequence.started"}']
    response = api.post("/api/v1/event", {"type": "sh.keptn.event.dev.delivery.triggered",
                                          "data": {"project": "sockshop", "stage": "dev", "service": "nope"}})
    assert response.status_code == 404
    assert scrape(api.headers)['bosun_transitions_total{kind="sequence.started"}'] == before
