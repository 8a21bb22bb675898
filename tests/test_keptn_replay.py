"""The requests Keptn's Go clients send, byte for byte, against a running `manage.py up`: go-utils' APISet (as
Keptn's CLI and integrations use it) and a go-sdk service carrying a task. Each request is built as those clients
build it (Go's JSON encoding of their models, zero values included; `url.Values.Encode()`'s sorted query; the
`Content-Type: application/json` and `x-token` headers they set on every method), and each answer is decoded as
their models type it: a field of the wrong JSON type fails a Go client's whole decode."""

import base64
import json
import re
import uuid
from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import KEPTN_SHIPYARD
from tests.running import bosun  # noqa: F401 (the module's server)

NUMBER, INTEGER, TIME, ANY = "number", "integer", "time", "any"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")


def go_decode(value, spec, where="answer"):
    """Fail where Go's encoding/json would fail to decode `value` into a model shaped like `spec`: a dict of
    fields, [spec] for a slice, ("map", spec) for a map, or a scalar kind. Absent fields and null are zero values."""
    if value is None or spec == ANY:
        return
    if isinstance(spec, dict):
        assert isinstance(value, dict), f"{where}: a JSON object is expected, not {value!r:.80}"
        for key, inner in spec.items():
            if key in value:
                go_decode(value[key], inner, f"{where}.{key}")
    elif isinstance(spec, list):
        assert isinstance(value, list), f"{where}: a JSON array is expected, not {value!r:.80}"
        for index, item in enumerate(value):
            go_decode(item, spec[0], f"{where}[{index}]")
    elif isinstance(spec, tuple):
        assert isinstance(value, dict), f"{where}: a JSON object (map) is expected"
        for key, item in value.items():
            go_decode(item, spec[1], f"{where}[{key}]")
    elif spec is str:
        assert isinstance(value, str), f"{where}: a string is expected, not {value!r:.80}"
    elif spec is bool:
        assert isinstance(value, bool), f"{where}: a boolean is expected, not {value!r:.80}"
    elif spec == NUMBER:
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{where}: a number, not {value!r}"
    elif spec == INTEGER:
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: an integer, not {value!r}"
    elif spec == TIME:
        assert isinstance(value, str) and RFC3339.match(value), f"{where}: an RFC 3339 time, not {value!r}"


# go-utils' models (pkg/api/models), the fields Bosun answers with
EVENT_CONTEXT = {"keptnContext": str}
EVENT_CONTEXT_INFO = {"eventId": str, "keptnContext": str, "time": str}
METADATA = {"automaticprovisioning": bool, "bridgeversion": str, "keptnlabel": str, "keptnversion": str,
            "namespace": str, "shipyardversion": str}
SERVICE = {"serviceName": str, "creationDate": str, "deployedImage": str,
           "lastEventTypes": ("map", EVENT_CONTEXT_INFO)}
STAGE = {"stageName": str, "services": [SERVICE], "parentStages": [str], "lastEventContext": EVENT_CONTEXT_INFO}
PROJECT = {"projectName": str, "creationDate": str, "shipyard": str, "shipyardVersion": str, "stages": [STAGE],
           "lastEventContext": EVENT_CONTEXT_INFO}
PAGE = {"nextPageKey": str, "pageSize": NUMBER, "totalCount": NUMBER}
PROJECTS = {**PAGE, "projects": [PROJECT]}
STAGES = {**PAGE, "stages": [STAGE]}
SERVICES = {**PAGE, "services": [SERVICE]}
CLOUD_EVENT = {"contenttype": str, "data": ANY, "id": str, "shkeptncontext": str, "shkeptnspecversion": str,
               "source": str, "specversion": str, "time": TIME, "triggeredid": str, "gitcommitid": str, "type": str}
EVENTS = {**PAGE, "events": [CLOUD_EVENT]}
SUBSCRIPTION = {"id": str, "event": str, "filter": {"projects": [str], "stages": [str], "services": [str]}}
INTEGRATION = {"id": str, "name": str, "subscriptions": [SUBSCRIPTION],
               "metadata": {"hostname": str, "integrationversion": str, "distributorversion": str, "location": str,
                            "kubernetesmetadata": {"namespace": str, "podname": str, "deploymentname": str},
                            "lastseen": TIME}}
LOG_ENTRY = {"integrationid": str, "message": str, "time": TIME, "shkeptncontext": str, "task": str,
             "triggeredid": str}
LOGS = {"nextPageKey": INTEGER, "pageSize": INTEGER, "totalCount": INTEGER, "logs": [LOG_ENTRY]}
ERROR = {"code": INTEGER, "message": str}


class GoClient:
    """Requests as go-utils' apiServiceUtils sends them."""

    def __init__(self, base: str, token: str):
        self.http = httpx.Client(base_url=base, timeout=15)
        self.headers = {"Content-Type": "application/json", "x-token": token}

    def send(self, method: str, path: str, body=None, query: dict | None = None) -> httpx.Response:
        if query:  # url.Values.Encode(): keys sorted, values escaped
            path += "?" + urlencode(sorted(query.items()))
        # json.Marshal: compact, fields in the model's order, nil slices and maps as null
        content = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        return self.http.request(method, path, content=content, headers=self.headers)

    def ok(self, method: str, path: str, spec, body=None, query=None):
        """go-utils' success check (a 2xx) and the model's decode."""
        response = self.send(method, path, body, query)
        assert 200 <= response.status_code < 300, (method, path, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/json"), response.headers
        payload = response.json() if response.content else None
        go_decode(payload, spec, f"{method} {path}")
        return payload


def go_event(event_type: str, data: dict, source: str, context: str = "", triggered_id: str = "",
             time: str = "0001-01-01T00:00:00Z") -> dict:
    """models.KeptnContextExtendedCE as Go encodes it (`time` has omitempty, which never omits a time.Time)."""
    event = {"contenttype": "application/json", "data": data, "id": str(uuid.uuid4())}
    if context:
        event["shkeptncontext"] = context
    event.update({"shkeptnspecversion": "0.2.4", "source": source, "specversion": "1.0", "time": time})
    if triggered_id:
        event["triggeredid"] = triggered_id
    event["type"] = event_type
    return event


@pytest.fixture(scope="module")
def go(bosun):  # noqa: F811
    return GoClient(bosun.base, bosun.token)


def test_go_utils_api_set_as_keptn_s_cli_calls_it(go):
    cp = "/api/controlPlane/v1"
    go.ok("POST", "/api/v1/auth", {})
    assert go.ok("GET", "/api/v1/metadata", METADATA)["automaticprovisioning"] is False
    shipyard = base64.b64encode(KEPTN_SHIPYARD.encode()).decode()
    go.ok("POST", f"{cp}/project", {}, {"gitCredentials": {"remoteURL": "https://git.example/replay.git",
                                                           "user": "keptn"}, "name": "replay", "shipyard": shipyard})
    go.ok("POST", f"{cp}/project/replay/service", {}, {"serviceName": "carts"})

    projects = go.ok("GET", f"{cp}/project", PROJECTS)
    assert projects.get("nextPageKey", "") in ("", "0")  # GetAllProjects stops here
    assert [p["projectName"] for p in projects["projects"]] == ["replay"]
    assert [s["stageName"] for s in go.ok("GET", f"{cp}/project/replay", PROJECT)["stages"]] == [
        "dev", "staging", "production"]
    stages = go.ok("GET", f"{cp}/project/replay/stage", STAGES)
    assert stages.get("nextPageKey", "") in ("", "0") and len(stages["stages"]) == 3
    assert go.ok("GET", f"{cp}/project/replay/stage/dev/service", SERVICES)["services"][0]["serviceName"] == "carts"
    go.ok("GET", f"{cp}/project/replay/stage/dev/service/carts", SERVICE)
    go.ok("PUT", f"{cp}/project", {}, {"name": "replay", "shipyard": shipyard})  # keptn update project

    # keptn trigger delivery: SendEvent with the zero time Go sends for an unset time.Time
    trigger = go_event("sh.keptn.event.dev.delivery.triggered", {
        "project": "replay", "stage": "dev", "service": "carts",
        "configurationChange": {"values": {"image": "docker.io/keptnexamples/carts:0.13.1"}}},
        "https://github.com/keptn/keptn/cli#configuration-change")
    context = go.ok("POST", "/api/v1/event", EVENT_CONTEXT, trigger)["keptnContext"]
    stored = go.ok("GET", "/api/mongodb-datastore/event", EVENTS, query={"keptnContext": context, "project": "replay"})
    assert stored["events"] and all(e["time"] > "2020" for e in stored["events"])  # stamped on arrival

    # an integration's poll for open tasks (GetOpenTriggeredEvents)
    open_tasks = go.ok("GET", f"{cp}/event/triggered/sh.keptn.event.deployment.triggered", EVENTS,
                       query={"project": "replay", "stage": "dev", "service": "carts"})
    assert [e["shkeptncontext"] for e in open_tasks["events"]] == [context]

    # keptn pause / resume sequence: the CLI sends the empty stage (no omitempty)
    for state in ("pause", "resume"):
        go.ok("POST", f"{cp}/sequence/replay/{context}/control", ANY, {"stage": "", "state": state})

    # keptn trigger evaluation
    evaluation = go.ok("POST", f"{cp}/project/replay/stage/dev/service/carts/evaluation", EVENT_CONTEXT,
                       {"start": "2026-12-01T10:00:00", "labels": {"run": "7"}, "timeframe": "5m"})
    assert evaluation["keptnContext"] != context

    # logs (LogHandler.Flush, GetLogs, DeleteLogs)
    go.ok("POST", f"{cp}/log", ANY, {"logs": [{"integrationid": "cli-replay", "message": "it broke",
                                                 "time": "0001-01-01T00:00:00Z", "shkeptncontext": context,
                                                 "task": "deployment", "triggeredid": ""}]})
    logs = go.ok("GET", f"{cp}/log", LOGS, query={"integrationId": "cli-replay", "pageSize": "10"})
    assert [e["message"] for e in logs["logs"]] == ["it broke"]
    go.ok("DELETE", f"{cp}/log", ANY, query={"integrationId": "cli-replay"})
    assert go.ok("GET", f"{cp}/log", LOGS, query={"integrationId": "cli-replay"})["logs"] == []

    # errors decode as models.Error, on every method
    for method in ("GET", "POST", "PUT", "DELETE"):
        response = go.send(method, f"{cp}/project/nope/stage/dev/service/carts/nothing")
        assert response.status_code in (404, 405)
        go_decode(response.json(), ERROR)
        assert response.json()["code"] == response.status_code

    go.ok("DELETE", f"{cp}/project/replay/service/carts", {"message": str})
    go.ok("DELETE", f"{cp}/project/replay", {"message": str})


def test_a_go_sdk_service_registers_polls_carries_a_task_and_forwards_its_error(go):
    cp = "/api/controlPlane/v1"
    go.ok("POST", f"{cp}/project", {}, {"name": "sdk", "shipyard": base64.b64encode(KEPTN_SHIPYARD.encode()).decode()})
    go.ok("POST", f"{cp}/project/sdk/service", {}, {"serviceName": "carts"})

    # controlplane.Register: models.Integration with Go's zero values (empty id, null slices, zero lastseen)
    registration = {"id": "", "name": "helm-service", "metadata": {
        "hostname": "node-1", "integrationversion": "0.20.0", "distributorversion": "0.20.0",
        "location": "control-plane", "kubernetesmetadata": {"namespace": "keptn", "podname": "helm-1",
                                                            "deploymentname": "helm-service"},
        "lastseen": "0001-01-01T00:00:00Z"},
        "subscriptions": [{"id": "", "event": "sh.keptn.event.deployment.triggered",
                           "filter": {"projects": ["sdk"], "stages": None, "services": None}}]}
    integration = go.ok("POST", f"{cp}/uniform/registration", {"id": str}, registration)["id"]
    pinged = go.ok("PUT", f"{cp}/uniform/registration/{integration}/ping", INTEGRATION)  # nil body
    subscription = pinged["subscriptions"][0]
    assert subscription["event"] == "sh.keptn.event.deployment.triggered" and subscription["id"]
    assert [i["id"] for i in go.ok("GET", f"{cp}/uniform/registration", [INTEGRATION])] == [integration]

    trigger = go_event("sh.keptn.event.dev.delivery.triggered", {"project": "sdk", "stage": "dev", "service": "carts"},
                       "keptn-cli")
    context = go.ok("POST", "/api/v1/event", EVENT_CONTEXT, trigger)["keptnContext"]

    # the HTTP event source: one project in the filter, so only project is sent
    polled = go.ok("GET", f"{cp}/event/triggered/sh.keptn.event.deployment.triggered", EVENTS,
                   query={"project": "sdk"})
    task = next(e for e in polled["events"] if e["shkeptncontext"] == context)

    # CreateStartedEvent / CreateFinishedEvent: time.Now().UTC() in RFC 3339 with nanoseconds
    now = "2026-12-03T16:20:11.123456789Z"
    started = go_event("sh.keptn.event.deployment.started", {"project": "sdk", "stage": "dev", "service": "carts"},
                       "helm-service", context, task["id"], now)
    go.ok("POST", "/api/v1/event", EVENT_CONTEXT, started)
    finished = go_event("sh.keptn.event.deployment.finished", {
        "project": "sdk", "stage": "dev", "service": "carts", "status": "errored", "result": "fail",
        "message": "helm upgrade failed"}, "helm-service", context, task["id"], now)
    go.ok("POST", "/api/v1/event", EVENT_CONTEXT, finished)
    # the log forwarder, on a .finished with status errored
    go.ok("POST", f"{cp}/log", ANY, {"logs": [{"integrationid": integration, "message": "helm upgrade failed",
                                                 "time": "0001-01-01T00:00:00Z", "shkeptncontext": context,
                                                 "task": "deployment", "triggeredid": task["id"]}]})

    page = go.ok("GET", f"{cp}/sequence-execution", {"nextPageKey": INTEGER, "pageSize": INTEGER,
                                                     "totalCount": INTEGER, "sequenceExecutions": [ANY]},
                 query={"keptnContext": context, "project": "sdk", "stage": "dev"})
    run = page["sequenceExecutions"][0]
    assert (run["status"]["state"], run["scope"]["result"]) == ("finished", "fail")
    reported = go.ok("GET", f"{cp}/log", LOGS, query={"integrationId": integration})["logs"]
    assert [(e["triggeredid"], e["message"]) for e in reported] == [(task["id"], "helm upgrade failed")]

    go.ok("DELETE", f"{cp}/uniform/registration/{integration}", ANY)
    assert go.ok("GET", f"{cp}/uniform/registration", [INTEGRATION], query={"id": integration}) == []
