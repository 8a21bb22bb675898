"""A Keptn user's scripts, unchanged: a delivery walked with Keptn's paths only, every answer checked
against Keptn's own API descriptions (../shared/keptn/), types included."""

import base64
import uuid


from sequences.demo import DEMO_SHIPYARD
from tests.keptn_contract import check



class KeptnClient:
    """Every answer of a Keptn path is checked against Keptn's declared shape before the test reads it."""

    def __init__(self, api):
        self.api = api
        self.checked: list[str] = []

    def call(self, method: str, template: str, path: str, body=None, expect=(200, 201, 202), **params):
        if method == "GET":
            response = self.api.get(path, **params)
        elif method == "DELETE":
            response = self.api.delete(path)
        else:
            response = self.api.post(path, body) if method == "POST" else self.api.put(path, body)
        assert response.status_code in expect, (path, response.status_code, response.content[:300])
        answer = response.json()
        check(method, template, answer)
        self.checked.append(f"{method} {template}")
        return answer


def test_a_delivery_through_keptns_paths_only(admin_api, sockshop):
    keptn = KeptnClient(admin_api)
    cp = "/api/controlPlane/v1"
    keptn.call("POST", "/api/v1/auth", "/api/v1/auth")
    assert keptn.call("GET", "/api/v1/metadata", "/api/v1/metadata")["automaticprovisioning"] is False
    shipyard = base64.b64encode(DEMO_SHIPYARD.encode()).decode()  # as the keptn CLI sends it
    keptn.call("POST", f"{cp}/project", f"{cp}/project", {"name": "keptnshop", "shipyard": shipyard})
    keptn.call("POST", f"{cp}/project/{{project}}/service", f"{cp}/project/keptnshop/service",
               {"serviceName": "carts"})
    projects = keptn.call("GET", f"{cp}/project", f"{cp}/project")
    assert {p["projectName"] for p in projects["projects"]} >= {"keptnshop", "sockshop"}

    context = keptn.call("POST", "/api/v1/event", "/api/v1/event", {
        "specversion": "1.0", "source": "keptn-cli", "type": "sh.keptn.event.dev.delivery.triggered",
        "gitcommitid": "c0ffee", "data": {"project": "keptnshop", "stage": "dev", "service": "carts",
                                           "configurationChange": {"values": {"image": "carts:0.11.1"}}}})["keptnContext"]
    # two executors answer each task of dev, as Keptn services do
    for _ in range(4):
        open_tasks = keptn.call("GET", f"{cp}/event/triggered/{{eventType}}",
                                f"{cp}/event/triggered/sh.keptn.event.{_task_name(admin_api, context)}.triggered",
                                project="keptnshop")
        event = open_tasks["events"][0]
        assert event["gitcommitid"] == "c0ffee" and event["time"]
        task = event["type"].removeprefix("sh.keptn.event.").removesuffix(".triggered")
        for source in ("helm-service", "jmeter-service"):
            keptn.call("POST", "/api/v1/event", "/api/v1/event", {
                "specversion": "1.0", "id": str(uuid.uuid4()), "source": source, "shkeptncontext": context,
                "triggeredid": event["id"], "type": f"sh.keptn.event.{task}.started", "data": {}})
        for source in ("helm-service", "jmeter-service"):
            keptn.call("POST", "/api/v1/event", "/api/v1/event", {
                "specversion": "1.0", "id": str(uuid.uuid4()), "source": source, "shkeptncontext": context,
                "triggeredid": event["id"], "type": f"sh.keptn.event.{task}.finished",
                "data": {"result": "pass", "status": "succeeded"}})
    states = keptn.call("GET", f"{cp}/sequence/{{project}}", f"{cp}/sequence/keptnshop", keptnContext=context)
    assert isinstance(states["nextPageKey"], int)
    assert [(s["name"], s["state"]) for s in states["states"][0]["stages"]] == [("dev", "finished"),
                                                                             ("staging", "started")]
    # latestEvent follows task events too, as Keptn's Bridge shows them
    assert [s["latestEvent"]["type"] for s in states["states"][0]["stages"]] == [
        "sh.keptn.event.dev.delivery.finished", "sh.keptn.event.deployment.triggered"]
    # pause and resume staging, then abort the context, with Keptn's control command
    for state in ("pause", "resume", "abort"):
        keptn.call("POST", f"{cp}/sequence/{{project}}/{{keptnContext}}/control",
                   f"{cp}/sequence/keptnshop/{context}/control", {"state": state, "stage": "staging"})
    stages = keptn.call("GET", f"{cp}/project/{{project}}/stage", f"{cp}/project/keptnshop/stage")
    dev = next(s for s in stages["stages"] if s["stageName"] == "dev")
    assert dev["services"][0]["deployedImage"] == "carts:0.11.1"
    assert "sh.keptn.event.dev.delivery.finished" in dev["services"][0]["lastEventTypes"]
    keptn.call("GET", f"{cp}/project/{{project}}/stage/{{stage}}", f"{cp}/project/keptnshop/stage/staging")
    keptn.call("GET", f"{cp}/project/{{project}}/stage/{{stage}}/service", f"{cp}/project/keptnshop/stage/dev/service")
    keptn.call("GET", f"{cp}/project/{{project}}/stage/{{stage}}/service/{{service}}",
               f"{cp}/project/keptnshop/stage/dev/service/carts")
    events = keptn.call("GET", "/api/mongodb-datastore/event", "/api/mongodb-datastore/event", keptnContext=context)
    assert events["events"][0]["type"] == "sh.keptn.event.dev.delivery.triggered"
    finished = keptn.call("GET", "/api/mongodb-datastore/event/type/{eventType}",
                          "/api/mongodb-datastore/event/type/sh.keptn.event.dev.delivery.finished",
                          filter=f"data.project:keptnshop AND shkeptncontext:{context}")
    assert finished["events"][0]["data"]["result"] == "pass"
    keptn.call("GET", f"{cp}/project/{{project}}", f"{cp}/project/keptnshop")
    keptn.call("DELETE", f"{cp}/project/{{project}}/service/{{service}}", f"{cp}/project/keptnshop/service/carts")
    keptn.call("DELETE", f"{cp}/project/{{project}}", f"{cp}/project/keptnshop")
    assert len(set(keptn.checked)) >= 15


def _task_name(api, context) -> str:
    run = api.get("/api/controlPlane/v1/sequence-execution", project="keptnshop", keptnContext=context).json()
    return run["sequenceExecutions"][0]["status"]["currentTask"]["name"]


def test_errors_have_keptns_error_shape(admin_api, sockshop):
    from tests.keptn_contract import _document
    import jsonschema

    error = _document("shipyard-controller.swagger.yaml")["definitions"]["models.Error"]
    for response in (admin_api.get("/api/controlPlane/v1/project/nope"),
                     admin_api.post("/api/v1/event", {"type": "nonsense"}),
                     admin_api.post("/api/controlPlane/v1/sequence/sockshop/x/control", {"state": "stop"})):
        assert 400 <= response.status_code < 500
        jsonschema.Draft4Validator(error).validate(response.json())
        assert isinstance(response.json()["code"], int) and response.json()["message"]


KEPTN_TEST_SHIPYARD = """\
apiVersion: spec.keptn.sh/0.2.2
kind: "Shipyard"
metadata:
  name: "shipyard-keptn-scenario"
spec:
  stages:
    - name: "dev"
      sequences:
        - name: "delivery"
          tasks:
            - name: "deployment"
            - name: "test"
    - name: "hardening"
      sequences:
        - name: "delivery"
          triggeredOn:
            - event: "dev.delivery.finished"
          tasks:
            - name: "deployment"
            - name: "test"
    - name: "production"
      sequences:
        - name: "delivery"
          triggeredOn:
            - event: "hardening.delivery.finished"
          tasks:
            - name: "approval"
              properties:
                pass: "manual"
                warning: "manual"
            - name: "deployment"
            - name: "release"
        - name: "rollback"
          triggeredOn:
            - event: "production.delivery.finished"
              selector:
                match:
                  result: "fail"
          tasks:
            - name: "rollback"
"""
CP = "/api/controlPlane/v1"
EXECUTORS = ("helm-service", "jmeter-service")


def _open_task(keptn, task, **params):
    found = keptn.call("GET", f"{CP}/event/triggered/{{eventType}}", f"{CP}/event/triggered/sh.keptn.event.{task}.triggered",
                       project="keptn-scenario", **params)
    return found["events"]


def _send(keptn, context, triggered, kind, source, **data):
    task = triggered["type"].removeprefix("sh.keptn.event.").removesuffix(".triggered")
    return keptn.call("POST", "/api/v1/event", "/api/v1/event", {
        "specversion": "1.0", "id": str(uuid.uuid4()), "source": source, "shkeptncontext": context,
        "triggeredid": triggered["id"], "type": f"sh.keptn.event.{task}.{kind}", "data": data})


def _work(keptn, context, task, stage, results=("pass", "pass")):
    """Two executors start the open task of this stage, then finish it, as Keptn services do."""
    [triggered] = [e for e in _open_task(keptn, task, stage=stage) if e["shkeptncontext"] == context]
    assert triggered["data"]["stage"] == stage and triggered["time"]
    for source in EXECUTORS:
        _send(keptn, context, triggered, "started", source)
    for source, result in zip(EXECUTORS, results):
        _send(keptn, context, triggered, "finished", source, result=result, status="succeeded")
    return triggered


def _stages(keptn, context):
    states = keptn.call("GET", f"{CP}/sequence/{{project}}", f"{CP}/sequence/keptn-scenario", keptnContext=context)
    return {s["name"]: s["state"] for s in states["states"][0]["stages"]}


def test_keptns_scenario_three_stages_two_executors_approval_pause_abort_and_rollback(admin_api, db):
    """The story of Keptn's own shipyard-controller tests, told with Keptn's paths and shapes only."""
    keptn = KeptnClient(admin_api)
    keptn.call("POST", f"{CP}/project", f"{CP}/project", {
        "name": "keptn-scenario", "shipyard": base64.b64encode(KEPTN_TEST_SHIPYARD.encode()).decode()})
    keptn.call("POST", f"{CP}/project/{{project}}/service", f"{CP}/project/keptn-scenario/service",
               {"serviceName": "carts"})
    context = keptn.call("POST", "/api/v1/event", "/api/v1/event", {
        "specversion": "1.0", "source": "keptn-cli", "type": "sh.keptn.event.dev.delivery.triggered",
        "data": {"project": "keptn-scenario", "stage": "dev", "service": "carts",
                 "configurationChange": {"values": {"image": "carts:0.12.1"}}}})["keptnContext"]

    _work(keptn, context, "deployment", "dev")
    _work(keptn, context, "test", "dev")
    assert _stages(keptn, context) == {"dev": "finished", "hardening": "started"}

    # hardening: pause while its deployment runs; its test is not triggered until the resume
    keptn.call("POST", f"{CP}/sequence/{{project}}/{{keptnContext}}/control",
               f"{CP}/sequence/keptn-scenario/{context}/control", {"state": "pause", "stage": "hardening"})
    _work(keptn, context, "deployment", "hardening")
    assert _open_task(keptn, "test", stage="hardening") == []
    assert _stages(keptn, context)["hardening"] == "paused"
    keptn.call("POST", f"{CP}/sequence/{{project}}/{{keptnContext}}/control",
               f"{CP}/sequence/keptn-scenario/{context}/control", {"state": "resume", "stage": "hardening"})
    _work(keptn, context, "test", "hardening")

    # production: a person approves (keptn send event approval.finished), then one executor fails the deployment
    assert _stages(keptn, context)["production"] == "waitingForApproval"
    [approval] = _open_task(keptn, "approval", stage="production")
    _send(keptn, context, approval, "finished", "keptn-cli", result="pass", status="succeeded")
    deployment = _work(keptn, context, "deployment", "production", results=("pass", "fail"))
    assert deployment["data"]["configurationChange"]["values"]["image"] == "carts:0.12.1"

    # the failed delivery triggers the rollback in the same context, worked by two executors too
    _work(keptn, context, "rollback", "production")
    events = keptn.call("GET", "/api/mongodb-datastore/event", "/api/mongodb-datastore/event", keptnContext=context,
                        pageSize=100)["events"]
    finished = {e["type"]: e["data"] for e in events if e["type"].endswith("delivery.finished")
                or e["type"].endswith("rollback.finished")}
    assert finished["sh.keptn.event.production.delivery.finished"]["result"] == "fail"
    assert finished["sh.keptn.event.production.rollback.finished"]["result"] == "pass"
    assert finished["sh.keptn.event.hardening.delivery.finished"]["result"] == "pass"
    assert all(e["time"] for e in events)

    # a second delivery, aborted with Keptn's control command while its deployment runs
    second = keptn.call("POST", "/api/v1/event", "/api/v1/event", {
        "specversion": "1.0", "source": "keptn-cli", "type": "sh.keptn.event.dev.delivery.triggered",
        "data": {"project": "keptn-scenario", "stage": "dev", "service": "carts"}})["keptnContext"]
    [triggered] = _open_task(keptn, "deployment", stage="dev")
    _send(keptn, second, triggered, "started", "helm-service")
    keptn.call("POST", f"{CP}/sequence/{{project}}/{{keptnContext}}/control",
               f"{CP}/sequence/keptn-scenario/{second}/control", {"state": "abort"})
    assert _stages(keptn, second) == {"dev": "aborting"}  # graceful: the running deployment is asked to stop
    _send(keptn, second, triggered, "finished", "helm-service", result="pass", status="succeeded")
    assert _stages(keptn, second) == {"dev": "aborted"}
    aborted = keptn.call("GET", "/api/mongodb-datastore/event/type/{eventType}",
                         "/api/mongodb-datastore/event/type/sh.keptn.event.dev.delivery.finished",
                         filter=f"shkeptncontext:{second}")["events"][0]["data"]
    assert (aborted["status"], aborted["result"]) == ("aborted", "fail")

    project = keptn.call("GET", f"{CP}/project/{{project}}", f"{CP}/project/keptn-scenario")
    assert project["lastEventContext"]["keptnContext"] == second
    assert {s["stageName"]: s["lastEventContext"]["keptnContext"] for s in project["stages"]} == {
        "dev": second, "hardening": context, "production": context}
    stage = keptn.call("GET", f"{CP}/project/{{project}}/stage/{{stage}}/service/{{service}}",
                       f"{CP}/project/keptn-scenario/stage/hardening/service/carts")
    assert stage["deployedImage"] == "carts:0.12.1"
