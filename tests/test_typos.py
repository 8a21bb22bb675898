"""Typos are not accepted in silence: shipyard keys Bosun does not read are named with their line, a job for a
task no sequence has is named, and a triggered task that nothing here takes says so on its page and lane."""

import json

from django.test import Client

from tests.helpers import current_task, one_stage_shipyard

TYPO = """\
apiVersion: spec.keptn.sh/0.2.3
kind: Shipyard
metadata: {name: typo}
spec:
  stages:
    - name: dev
      sequence:
        - name: delivery
          tasks: [{name: deployment}]
    - name: prod
      sequences:
        - name: delivery
          tasks:
            - name: deployment
              timout: 5m
"""


def test_a_shipyard_key_bosun_does_not_read_is_named_with_its_line_and_a_guess(admin_api):
    answer = admin_api.post("/api/controlPlane/v1/project", {"name": "typo", "shipyard": TYPO})
    assert answer.status_code == 201
    assert answer.json()["warnings"] == [
        "line 7: spec.stages[0].sequence: Bosun does not know this key (did you mean 'sequences'?); it is ignored",
        "line 15: spec.stages[1].sequences[0].tasks[0].timout: Bosun does not know this key (did you mean "
        "'timeout'?); it is ignored"]
    assert admin_api.get("/api/controlPlane/v1/project/typo").json()["warnings"] == answer.json()["warnings"]


def test_a_job_for_a_task_no_sequence_has_is_named(admin_api):
    shipyard = one_stage_shipyard("jobs", [{"name": "deployment"}, {"name": "test"}])
    jobs = {"jobs": [{"name": "deploy", "task": "deployment", "command": ["true"]},
                     {"name": "tests", "task": "tset", "command": ["true"]}]}
    answer = admin_api.post("/api/controlPlane/v1/project", {"name": "jobs", "shipyard": shipyard,
                                                            "jobs": json.dumps(jobs)})
    assert answer.status_code == 201
    assert answer.json()["warnings"] == [
        "jobs[1] (tests): no sequence of the shipyard has a task 'tset' (did you mean 'test'?), so this job "
        "never runs"]


def test_a_triggered_task_that_nothing_takes_says_so_on_its_page_and_lane(admin_api, admin_user):
    shipyard = one_stage_shipyard("lonely", [{"name": "deployment"}, {"name": "test"}])
    jobs = {"jobs": [{"task": "deployment", "command": ["true"]}]}
    assert admin_api.post("/api/controlPlane/v1/project", {"name": "lonely", "shipyard": shipyard,
                                                          "jobs": json.dumps(jobs)}).status_code == 201
    assert admin_api.post("/api/controlPlane/v1/project/lonely/service", {"serviceName": "carts"}).status_code == 201
    context = admin_api.trigger(project="lonely")
    browser = Client()
    browser.force_login(admin_user)
    page = browser.get(f"/bridge/project/lonely/sequence/{context}").content.decode()
    assert "Nothing here takes task" not in page  # a job runs the deployment
    admin_api.finish(current_task(context))
    assert current_task(context).name == "test"
    page = browser.get(f"/bridge/project/lonely/sequence/{context}").content.decode()
    assert ("Nothing here takes task &#x27;test&#x27;: no job of this project runs it in dev/carts and no registered "
            "integration subscribes to sh.keptn.event.test.triggered. It waits for an executor of your own, or "
            "times out.") in page
    lane = browser.get("/bridge/project/lonely/").content.decode()
    assert "⚠ nothing here takes test" in lane
    registered = admin_api.post("/api/controlPlane/v1/uniform/registration", {
        "name": "jmeter-service", "metadata": {"hostname": "node-1"},
        "subscriptions": [{"event": "sh.keptn.event.test.triggered", "filter": {"projects": ["lonely"]}}]})
    assert registered.status_code == 201
    assert "Nothing here takes task" not in browser.get(f"/bridge/project/lonely/sequence/{context}").content.decode()
    assert "nothing here takes" not in browser.get("/bridge/project/lonely/").content.decode()
