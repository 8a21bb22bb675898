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
