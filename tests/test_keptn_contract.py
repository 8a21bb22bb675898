"""A Keptn user's scripts, unchanged: a delivery walked with Keptn's paths only, every answer checked
against Keptn's own API descriptions (../shared/keptn/), types included."""

import base64
import uuid

import pytest

from sequences.demo import DEMO_SHIPYARD
from tests.keptn_contract import check

pytestmark = pytest.mark.postgres


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
