"""Requests exactly as Keptn's Go clients (go-utils' APISet, the go-sdk) send them, and their answers decoded
as those clients' models type them."""

import pytest
from django.test import Client

from tests.helpers import current_task, run_of


def control(api, context, body):
    return api.post(f"/api/controlPlane/v1/sequence/sockshop/{context}/control", body)


def test_pause_resume_and_abort_with_the_empty_stage_go_utils_sends_apply_to_the_whole_context(api, sockshop):
    context = api.trigger()
    api.finish(current_task(context))
    # go-utils' SequenceControlCommand has no omitempty: the CLI's default sends "stage": ""
    assert control(api, context, {"state": "pause", "stage": ""}).json()["state"] == "paused"
    assert run_of(context).state == "paused"
    assert control(api, context, {"state": "resume", "stage": ""}).json()["state"] == "started"
    answer = control(api, context, {"state": "abort", "stage": ""})
    assert answer.status_code == 200
    assert [run["state"] for run in answer.json()["sequenceExecutions"]] == ["aborted"]


def test_a_page_of_sequence_executions_decodes_as_keptn_s_sequence_execution_result(api, sockshop):
    for service in ("carts", "orders", "carts"):
        api.trigger(service=service)
    first = api.executions(pageSize=2)
    assert isinstance(first["nextPageKey"], int) and not isinstance(first["nextPageKey"], bool)
    last = api.executions(pageSize=2, nextPageKey=first["nextPageKey"])
    assert (last["pageSize"], last["totalCount"], "nextPageKey" in last) == (1, 3, False)


METHODS = ["get", "post", "put", "delete", "patch"]
UNKNOWN = ["/api/nope", "/api/controlPlane/v1/nothing/here", "/api/v1/event/x/y"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("path", UNKNOWN)
def test_every_method_on_a_path_bosun_does_not_serve_is_keptn_s_json_404(api, sockshop, method, path):
    browserless = Client(enforce_csrf_checks=True)  # as a Go client: a token, no cookie, no CSRF token
    body = {} if method == "get" else {"data": "{}", "content_type": "application/json"}
    response = getattr(browserless, method)(path, **body, **api.headers)
    assert (response.status_code, response["Content-Type"]) == (404, "application/json")
    assert response.json() == {"code": 404, "message": f"There is no API endpoint at {path}; see /api/docs for "
                                                       "the list."}


@pytest.mark.parametrize("method,path,allow", [
    ("post", "/api/v1/metadata", "GET"), ("delete", "/api/v1/metadata", "GET"),
    ("put", "/api/v1/event", "GET, POST"), ("patch", "/api/v1/event", "GET, POST"),
])
def test_a_known_path_with_a_wrong_method_is_a_json_405_that_says_what_it_answers(api, sockshop, method, path,
                                                                                   allow):
    browserless = Client(enforce_csrf_checks=True)
    response = getattr(browserless, method)(path, data="{}", content_type="application/json", **api.headers)
    assert (response.status_code, response["Content-Type"], response["Allow"]) == (405, "application/json", allow)
    assert response.json() == {"code": 405, "message": f"{method.upper()} is not allowed on {path}; it answers "
                                                       f"{allow}."}


EVALUATION = "/api/controlPlane/v1/project/sockshop/stage/{stage}/service/carts/evaluation"


def test_keptn_trigger_evaluation_runs_the_stage_s_evaluation_with_keptn_s_data(api, sockshop):
    body = {"start": "2021-01-02T15:00:00", "timeframe": "5m", "labels": {"buildId": "7"}, "gitcommitid": "asdf123f"}
    response = api.post(EVALUATION.format(stage="staging"), body)
    assert response.status_code == 200
    context = response.json()["keptnContext"]
    run = run_of(context, "staging", "evaluation")
    assert (run.state, run.gitcommitid, current_task(context, "staging", "evaluation").name) == (
        "started", "asdf123f", "evaluation")
    triggered = api.get("/api/v1/event", keptnContext=context, type="sh.keptn.event.staging.evaluation.triggered")
    data = triggered.json()["events"][0]["data"]
    assert (data["evaluation"], data["labels"], data["service"]) == (
        {"start": "2021-01-02T15:00:00", "timeframe": "5m"}, {"buildId": "7"}, "carts")


def test_an_evaluation_of_a_stage_the_project_lacks_is_a_404_and_end_with_timeframe_a_400(api, sockshop):
    missing = api.post(EVALUATION.format(stage="qa"), {"timeframe": "5m"})
    assert (missing.status_code, missing.json()["message"]) == (404, "Stage 'qa' does not exist in project 'sockshop'.")
    both = api.post(EVALUATION.format(stage="dev"), {"start": "2021-01-02T15:00:00", "end": "2021-01-02T15:10:00",
                                                     "timeframe": "5m"})
    assert both.status_code == 400 and "end and timeframe" in both.json()["message"]
    assert not api.get("/api/v1/event", type="sh.keptn.event.dev.evaluation.triggered").json()["events"]
