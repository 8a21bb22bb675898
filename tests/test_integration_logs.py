"""Keptn's log API: the errors integrations report, as the go-sdk's log forwarder and go-utils' LogHandler send
and read them; bounded per integration; shown on the environment page and on the task's sequence page."""

import json

from django.test import Client

from sequences import integration_logs
from sequences.models import IntegrationLog
from tests import keptn_contract
from tests.helpers import current_task

LOG = "/api/controlPlane/v1/log"
REGISTRATION = "/api/controlPlane/v1/uniform/registration"


def entry(message="deployment failed: image pull backoff", integration="int-1", **fields) -> dict:
    """A models.LogEntry as Go encodes it: every field present, the zero time when the sender set none."""
    return {"integrationid": integration, "message": message, "time": "0001-01-01T00:00:00Z",
            "shkeptncontext": "", "task": "", "triggeredid": "", **fields}


def send(api, *entries):
    response = api.post(LOG, {"logs": list(entries)})
    assert response.status_code == 200, response.content
    assert response.json() == {}
    return response


def read(api, **params) -> dict:
    response = api.get(LOG, **params)
    assert response.status_code == 200, response.content
    body = response.json()
    keptn_contract.check("GET", LOG, body)
    return body


def test_the_go_sdk_s_forwarded_error_is_stored_and_read_back_as_keptn_s_get_logs_response(api, sockshop):
    context = api.trigger()
    task = current_task(context)
    send(api, entry(integration="job-exec-1", shkeptncontext=context, task="deployment",
                    triggeredid=task.triggered_id))
    body = read(api, integrationId="job-exec-1")
    assert (body["totalCount"], body["pageSize"], "nextPageKey" in body) == (1, 1, False)
    stored = body["logs"][0]
    assert {key: stored[key] for key in ("integrationid", "message", "shkeptncontext", "task", "triggeredid")} == {
        "integrationid": "job-exec-1", "message": "deployment failed: image pull backoff", "shkeptncontext": context,
        "task": "deployment", "triggeredid": task.triggered_id}
    assert stored["time"] > "2020" and stored["time"].endswith("Z")  # Go's zero time: stamped on arrival
    assert read(api, integrationId="someone-else") == {"logs": [], "pageSize": 0, "totalCount": 0}


def test_pages_are_newest_first_with_an_integer_next_page_key_absent_on_the_last(api, sockshop):
    send(api, *[entry(f"error {n}", time=f"2026-01-0{n}T10:00:00.000Z") for n in range(1, 6)])
    first = read(api, integrationId="int-1", pageSize="2")
    assert [e["message"] for e in first["logs"]] == ["error 5", "error 4"]
    assert (first["nextPageKey"], first["totalCount"]) == (2, 5)
    second = read(api, integrationId="int-1", pageSize="2", nextPageKey=str(first["nextPageKey"]))
    last = read(api, integrationId="int-1", pageSize="2", nextPageKey=str(second["nextPageKey"]))
    assert [e["message"] for e in second["logs"] + last["logs"]] == ["error 3", "error 2", "error 1"]
    assert "nextPageKey" not in last
    window = read(api, fromTime="2026-01-02T00:00:00.000Z", beforeTime="2026-01-04T10:00:00.000Z")
    assert [e["message"] for e in window["logs"]] == ["error 4", "error 3", "error 2"]


def test_bad_queries_and_bodies_get_a_json_400_and_store_nothing(api, sockshop):
    send(api, entry("kept"))
    for params, words in (({"fromTime": "yesterday"}, "fromTime"), ({"pageSize": "-1"}, "pageSize"),
                          ({"pageSize": "501"}, "pageSize"), ({"nextPageKey": "x"}, "nextPageKey")):
        response = api.get(LOG, **params)
        assert (response.status_code, response["Content-Type"]) == (400, "application/json; charset=utf-8")
        assert words in response.json()["message"]
    for body in ("not json", json.dumps({"logs": "x"}), json.dumps({"logs": [1, 2]}), json.dumps([entry()])):
        response = api.post(LOG, body)
        assert response.status_code == 400 and "CreateLogsRequest" in response.json()["message"]
    assert api.delete(f"{LOG}?beforeTime=never").status_code == 400
    assert [e.message for e in IntegrationLog.objects.all()] == ["kept"]


def test_odd_values_from_a_client_are_stored_as_text(api, sockshop):
    send(api, {"integrationid": 7, "message": {"why": "no disk"}, "time": "garbage", "task": None},
         entry("x" * 10_000))
    long, odd = IntegrationLog.objects.order_by("id")[1], IntegrationLog.objects.order_by("id")[0]
    assert (odd.integration_id, odd.message, odd.task) == ("7", '{"why": "no disk"}', "")
    assert len(long.message) == integration_logs.MESSAGE_LIMIT and long.message.endswith("…")


def test_each_integration_keeps_its_newest_entries_and_a_busy_one_drops_no_other_s(api, sockshop):
    keep = integration_logs.KEEP_PER_INTEGRATION
    send(api, entry("the quiet one's error", integration="quiet"))
    send(api, *[entry(f"flood {n}", integration="busy", time=f"2026-02-01T10:{n // 60:02d}:{n % 60:02d}.000Z")
                for n in range(keep + 10)])
    busy = read(api, integrationId="busy")
    assert (busy["totalCount"], busy["logs"][0]["message"], busy["logs"][-1]["message"]) == (
        keep, f"flood {keep + 9}", "flood 10")
    assert read(api, integrationId="quiet")["totalCount"] == 1


def test_delete_removes_one_integration_s_entries(api, sockshop):
    send(api, entry("a", integration="one"), entry("b", integration="two"))
    response = api.delete(f"{LOG}?integrationId=one")
    assert (response.status_code, response.json()) == (200, {})
    assert [e["integrationid"] for e in read(api)["logs"]] == ["two"]


def test_a_viewer_reads_but_may_not_write_or_delete(api, viewer_api, sockshop):
    send(api, entry("kept"))
    assert viewer_api.post(LOG, {"logs": [entry("nope")]}).status_code == 403
    assert viewer_api.delete(f"{LOG}?integrationId=int-1").status_code == 403
    assert [e["message"] for e in read(viewer_api)["logs"]] == ["kept"]
    assert Client().get(LOG).status_code == 401


def test_a_token_s_post_is_never_refused_as_a_forged_form(api, sockshop):
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(LOG, json.dumps({"logs": [entry()]}), content_type="application/json",
                           HTTP_X_TOKEN=api.headers["HTTP_X_TOKEN"])
    assert (response.status_code, response.json()) == (200, {})


def test_the_bridge_shows_an_integration_s_latest_errors_and_a_task_s_reported_error(api, sockshop, admin_user):
    registration = {"name": "job-executor-service", "metadata": {"hostname": "node-7"},
                    "subscriptions": [{"event": "sh.keptn.event.deployment.triggered",
                                       "filter": {"projects": ["sockshop"]}}]}
    integration = api.post(REGISTRATION, registration).json()["id"]
    context = api.trigger()
    task = current_task(context)
    send(api, entry("helm upgrade failed: timed out waiting for the condition", integration=integration,
                    shkeptncontext=context, task="deployment", triggeredid=task.triggered_id))
    browser = Client()
    browser.force_login(admin_user)
    environment = browser.get("/bridge/project/sockshop/").content.decode()
    errors = environment.split('class="integration-errors"', 1)[1].split("</div>", 1)[0]
    assert "helm upgrade failed: timed out waiting for the condition" in errors and "deployment" in errors
    page = browser.get(f"/bridge/project/sockshop/sequence/{context}").content.decode()
    reported = page.split('class="reported-errors"', 1)[1].split("</ul>", 1)[0]
    assert "job-executor-service reported at" in reported
    assert "helm upgrade failed: timed out waiting for the condition" in reported
