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
UNKNOWN = ["/api/nope", "/api/controlPlane/v1/nothing/here", "/api/v1/event/x/y",
           # Keptn's services Bosun has no counterpart for (README: Coming from Keptn)
           "/api/resource-service/v1/project/sockshop/resource", "/api/configuration-service/v1/project",
           "/api/secrets/v1/secret"]


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


def _deployed(api, project_path: str) -> dict:
    """(stage, service) -> deployedImage, as Keptn's ExpandedProject lists them."""
    stages = api.get(project_path).json()["stages"]
    return {(s["stageName"], svc["serviceName"]): svc["deployedImage"] for s in stages for svc in s["services"]}


def test_deployed_image_is_set_when_a_deployment_finishes_not_when_its_sequence_ends(api, sockshop):
    image = "docker.io/keptnexamples/carts:0.12.0"
    context = api.trigger(tag="0.12.0")
    deployment = current_task(context)
    assert deployment.name == "deployment"
    assert _deployed(api, "/api/controlPlane/v1/project/sockshop")[("dev", "carts")] == ""
    api.finish(deployment)
    assert run_of(context).state == "started"  # the sequence goes on: its next task runs
    assert _deployed(api, "/api/controlPlane/v1/project/sockshop") == {
        ("dev", "carts"): image, ("dev", "orders"): "", ("staging", "carts"): "", ("staging", "orders"): "",
        ("production", "carts"): "", ("production", "orders"): ""}
    listed = api.get("/api/controlPlane/v1/project").json()["projects"][0]
    assert listed["stages"][0]["services"][0] == {
        "serviceName": "carts", "creationDate": listed["stages"][0]["services"][0]["creationDate"],
        "deployedImage": image}
    base = "/api/controlPlane/v1/project/sockshop/stage"
    assert api.get(base).json()["stages"][0]["services"][0]["deployedImage"] == image
    assert api.get(f"{base}/dev").json()["services"][0]["deployedImage"] == image
    assert api.get(f"{base}/dev/service").json()["services"][0]["deployedImage"] == image
    assert api.get(f"{base}/dev/service/carts").json()["deployedImage"] == image


def test_a_failed_deployment_leaves_the_deployed_image_as_it_was(api, sockshop):
    first = api.trigger(tag="1.0.0")
    api.finish(current_task(first), result="warning")  # warning deploys too
    api.post(f"/api/controlPlane/v1/sequence/sockshop/{first}/control", {"state": "abort"})
    second = api.trigger(tag="2.0.0")
    api.finish(current_task(second), result="fail")
    assert api.get("/api/controlPlane/v1/project/sockshop/stage/dev/service/carts").json()["deployedImage"] == \
        "docker.io/keptnexamples/carts:1.0.0"


def test_the_environment_page_shows_what_a_finished_deployment_put_in_its_stage(api, sockshop, admin_user):
    context = api.trigger(tag="0.13.0")
    api.finish(current_task(context))
    browser = Client()
    browser.force_login(admin_user)
    page = browser.get("/bridge/project/sockshop/").content.decode()
    deployed = page.split('class="lane-deployed"', 1)[1].split("</p>", 1)[0]
    assert "0.13.0" in deployed


@pytest.mark.parametrize("stage,name,reason", [
    ("qa", "delivery", "Project 'sockshop' has no stage 'qa'"),
    ("dev", "build", "Stage 'dev' has no sequence 'build'"),
])
def test_a_trigger_of_an_unknown_stage_or_sequence_is_a_finished_errored_sequence_state(api, sockshop, stage, name,
                                                                                          reason):
    response = api.post("/api/v1/event", {"type": f"sh.keptn.event.{stage}.{name}.triggered", "source": "keptn-cli",
                                          "data": {"project": "sockshop", "stage": stage, "service": "carts"}})
    context = response.json()["keptnContext"]
    states = api.get("/api/controlPlane/v1/sequence/sockshop", keptnContext=context).json()
    assert (states["totalCount"], states["nextPageKey"]) == (1, 0)
    state = states["states"][0]
    assert (state["name"], state["service"], state["shkeptncontext"], state["state"]) == (name, "carts", context,
                                                                                        "finished")
    assert [(s["name"], s["state"], s["result"]) for s in state["stages"]] == [(stage, "finished", "fail")]
    assert state["stages"][0]["latestEvent"]["type"] == f"sh.keptn.event.{stage}.{name}.finished"
    run = api.executions(keptnContext=context)["sequenceExecutions"][0]
    assert (run["status"]["state"], run["commands"]) == ("finished", [])
    assert reason in run["status"]["message"]
    assert (run["scope"]["result"], run["scope"]["status"]) == ("fail", "errored")


def test_keptn_update_project_puts_the_shipyard_with_the_name_in_the_body(admin_api, sockshop):
    """go-utils' APIHandler.UpdateProject: PUT /controlPlane/v1/project with models.UpdateProjectParams."""
    import base64

    from tests.helpers import one_stage_shipyard

    shipyard = base64.b64encode(one_stage_shipyard("sockshop", [{"name": "deployment"}]).encode()).decode()
    answer = admin_api.put("/api/controlPlane/v1/project", {"name": "sockshop", "shipyard": shipyard,
                                                      "gitRemoteURL": "", "gitUser": ""})
    assert (answer.status_code, answer.json()) == (201, {})
    stages = admin_api.get("/api/controlPlane/v1/project/sockshop").json()["stages"]
    assert [s["stageName"] for s in stages] == ["dev"]
    for body, code in (({"name": "nope", "shipyard": shipyard}, 404), ({"name": "sock\x00shop", "shipyard": shipyard}, 404),
                       ({"name": "sockshop", "gitUser": "me"}, 400),
                       ({"name": "sockshop", "shipyard": "kind: [unclosed"}, 400)):
        answer = admin_api.put("/api/controlPlane/v1/project", body)
        assert (answer.status_code, answer["Content-Type"]) == (code, "application/json; charset=utf-8")
    assert [s["stageName"] for s in admin_api.get("/api/controlPlane/v1/project/sockshop").json()["stages"]] == ["dev"]
