"""Keptn's uniform: remote integrations register, ping and subscribe; their filters decide what they are offered."""

import json

import pytest
from django.test import Client

from sequences.registrations import Integration
from tests import keptn_contract
from tests.helpers import current_task

REGISTRATION = "/api/controlPlane/v1/uniform/registration"


def keptn_answer(api, method, path, template=None, body=None, status=200):
    """Call a Keptn path and check the answer against Keptn's own definition of it."""
    response = getattr(api, method)(path, body) if body is not None or method == "post" else getattr(api, method)(path)
    assert response.status_code == status, response.content
    payload = response.json()
    keptn_contract.check(method.upper(), template or path, payload)
    return payload


def helm(stage_filter=None, host="node-1", name="helm-service"):
    return {"name": name,
            "metadata": {"hostname": host, "integrationversion": "0.19.3", "distributorversion": "0.19.3",
                         "location": "control-plane", "kubernetesmetadata": {"namespace": "keptn",
                                                                             "podname": f"{name}-abc"}},
            "subscriptions": [{"event": "sh.keptn.event.deployment.triggered",
                               "filter": {"projects": ["sockshop"], "stages": stage_filter or [], "services": []}}]}


def test_an_integration_registers_once_and_is_known_again_after_a_restart(api, sockshop):
    first = keptn_answer(api, "post", REGISTRATION, body=helm(), status=201)
    again = keptn_answer(api, "post", REGISTRATION, body=helm(), status=200)  # the same name, namespace and host
    assert again["id"] == first["id"]
    other = keptn_answer(api, "post", REGISTRATION, body=helm(host="node-2"), status=201)
    assert other["id"] != first["id"]

    listed = keptn_answer(api, "get", f"{REGISTRATION}?id={first['id']}", REGISTRATION)
    assert [i["name"] for i in listed] == ["helm-service"]
    assert listed[0]["metadata"]["hostname"] == "node-1"
    assert listed[0]["subscriptions"][0]["event"] == "sh.keptn.event.deployment.triggered"
    subscription_id = listed[0]["subscriptions"][0]["id"]
    assert subscription_id

    assert len(keptn_answer(api, "get", f"{REGISTRATION}?project=sockshop&stage=dev", REGISTRATION)) == 2
    assert keptn_answer(api, "get", f"{REGISTRATION}?project=other", REGISTRATION) == []

    before = Integration.objects.get(integration_id=first["id"]).last_seen
    pinged = keptn_answer(api, "put", f"{REGISTRATION}/{first['id']}/ping",
                          f"{REGISTRATION}/{{integrationID}}/ping", body={})
    assert pinged["id"] == first["id"]
    assert Integration.objects.get(integration_id=first["id"]).last_seen > before

    response = api.delete(f"{REGISTRATION}/{other['id']}")
    assert response.status_code == 200
    assert not Integration.objects.filter(integration_id=other["id"]).exists()


def test_subscriptions_are_added_read_replaced_and_deleted(api, sockshop):
    integration = keptn_answer(api, "post", REGISTRATION, body=helm(), status=201)["id"]
    base = f"{REGISTRATION}/{integration}/subscription"
    response = api.post(base, {"event": "sh.keptn.event.test.triggered", "filter": {"stages": ["staging"]}})
    assert response.status_code == 201
    added = response.json()["id"]
    subscriptions = keptn_answer(api, "get", base, f"{REGISTRATION}/{{integrationID}}/subscription")
    assert [s["event"] for s in subscriptions] == ["sh.keptn.event.deployment.triggered",
                                                   "sh.keptn.event.test.triggered"]
    one = keptn_answer(api, "get", f"{base}/{added}", f"{REGISTRATION}/{{integrationID}}/subscription/{{subscriptionID}}")
    assert one["filter"] == {"projects": [], "stages": ["staging"], "services": []}
    assert api.put(f"{base}/{added}", {"event": "sh.keptn.event.test.triggered",
                                       "filter": {"stages": ["production"]}}).status_code == 201
    assert api.get(f"{base}/{added}").json()["filter"]["stages"] == ["production"]
    assert api.delete(f"{base}/{added}").status_code == 200
    assert api.get(f"{base}/{added}").status_code == 404
    assert api.get(f"{REGISTRATION}/nope/subscription").json() == {
        "code": 404, "message": "No integration is registered with id nope."}


def test_a_subscriptions_filter_decides_which_open_tasks_an_integration_is_offered(api, sockshop):
    dev_only = keptn_answer(api, "post", REGISTRATION, body=helm(["dev"], host="dev-node"), status=201)["id"]
    everywhere = keptn_answer(api, "post", REGISTRATION, body=helm(host="any-node"), status=201)["id"]
    in_dev = api.trigger(tag="1")
    in_staging = api.trigger(stage="staging", tag="2")
    path = "/api/controlPlane/v1/event/triggered/sh.keptn.event.deployment.triggered"

    def offered(integration):
        answer = keptn_answer(api, "get", f"{path}?integrationId={integration}",
                              "/api/controlPlane/v1/event/triggered/{eventType}")
        return {e["shkeptncontext"] for e in answer["events"]}

    assert offered(dev_only) == {in_dev}
    assert offered(everywhere) == {in_dev, in_staging}
    # Keptn's distributor sends a filter's lists comma-separated
    listed = api.get(path, project="sockshop", stage="dev,staging").json()["events"]
    assert {e["shkeptncontext"] for e in listed} == {in_dev, in_staging}
    # an integration with no subscription to the type is offered nothing
    test_path = "/api/controlPlane/v1/event/triggered/sh.keptn.event.test.triggered"
    api.finish(current_task(in_dev))
    assert api.get(test_path, integrationId=dev_only).json()["events"] == []
    assert api.get(path, integrationId="unknown").status_code == 404


@pytest.mark.parametrize("body, message", [
    ({"metadata": {"hostname": "h"}}, "name is required"),
    ({"name": "x", "subscriptions": "sh.keptn.event.>"}, "subscriptions must be a list"),
    ({"name": "x", "subscriptions": [{"filter": {}}]}, "A subscription needs an event"),
    ({"name": "x", "subscriptions": [{"event": "e", "filter": {"stages": [{"a": 1}]}}]}, "filter.stages must be a string"),
    ({"name": "x", "metadata": "host"}, "metadata must be an object"),
    ({"name": "x" * 201}, "name is longer than 200 characters"),
    ("not json", "The body must be JSON"),
    ([1, 2], "The registration must be a JSON object"),
])
def test_a_bad_registration_gets_400_and_stores_nothing(api, sockshop, body, message):
    response = api.post(REGISTRATION, body if not isinstance(body, str) else body.encode())
    assert response.status_code == 400
    assert message in response.json()["message"]
    assert not Integration.objects.exists()


def test_a_viewer_may_list_integrations_but_not_register_one(viewer_api, api, sockshop):
    assert viewer_api.post(REGISTRATION, helm()).status_code == 403
    assert not Integration.objects.exists()
    keptn_answer(api, "post", REGISTRATION, body=helm(), status=201)
    assert len(viewer_api.get(REGISTRATION).json()) == 1
    assert api.client.get(REGISTRATION).status_code == 401


def test_the_environment_page_shows_the_projects_integrations(admin_user, api, sockshop):
    browser = Client()
    browser.force_login(admin_user)
    keptn_answer(api, "post", REGISTRATION, body=helm(["dev"]), status=201)
    other = helm(name="jmeter-service")
    other["subscriptions"][0]["filter"]["projects"] = ["another-project"]
    keptn_answer(api, "post", REGISTRATION, body=other, status=201)
    page = browser.get("/bridge/project/sockshop/").content.decode()
    section = page[page.index('class="card integrations"'):]
    assert "helm-service" in section and "node-1" in section and "last seen" in section
    assert "sh.keptn.event.deployment.triggered" in section and "for sockshop in dev" in section
    assert "jmeter-service" not in section  # it subscribes to another project only


# --- registrations belong to their user and are bounded --------------------------------------------


@pytest.fixture
def other_team(db):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from sequences.models import ApiToken
    from tests.conftest import Api

    user = get_user_model().objects.create_user("other-team", "", "pw")
    user.user_permissions.add(Permission.objects.get(codename="operate_sequences"))
    return Api(ApiToken.issue(user, "theirs")[1])


def test_another_user_cannot_take_over_or_change_a_registration(api, other_team, sockshop):
    mine = api.post(REGISTRATION, helm()).json()["id"]
    path = f"{REGISTRATION}/{mine}"
    taken = other_team.post(REGISTRATION, helm())  # the same name and host
    assert taken.status_code == 403
    assert taken.json()["message"] == ("Integration 'helm-service' on 'node-1' belongs to another user; register "
                                       "yours under another name or host.")
    assert other_team.post(f"{path}/subscription", {"event": "sh.keptn.event.>"}).status_code == 403
    assert other_team.put(f"{path}/ping", {}).status_code == 403
    assert other_team.delete(path).status_code == 403
    kept = Integration.objects.get(integration_id=mine)
    assert [s["event"] for s in kept.subscriptions] == ["sh.keptn.event.deployment.triggered"]
    assert kept.owner.username == "operator"
    assert api.post(REGISTRATION, helm()).status_code == 200  # its owner registers again as before


def test_a_registration_s_subscriptions_are_bounded_in_size(api, sockshop):
    names = [f"service-{i:03d}-" + "x" * 80 for i in range(100)]
    huge = helm()
    huge["subscriptions"] = [{"event": "sh.keptn.event.deployment.triggered",
                              "filter": {"projects": ["sockshop"], "stages": [], "services": names}}] * 10
    refused = api.post(REGISTRATION, huge)
    assert refused.status_code == 413
    assert "an integration's may take at most 65536" in refused.json()["message"]
    assert not Integration.objects.exists()
    mine = api.post(REGISTRATION, helm()).json()["id"]
    for _ in range(8):  # each about 9.5 KB
        added = api.post(f"{REGISTRATION}/{mine}/subscription",
                         {"event": "sh.keptn.event.test.triggered", "filter": {"services": names}})
    assert added.status_code == 413
    assert len(json.dumps(Integration.objects.get(integration_id=mine).subscriptions)) <= 65536


def test_one_user_registers_a_bounded_number_of_integrations(api, sockshop, monkeypatch):
    from sequences import registrations as uniform

    monkeypatch.setattr(uniform, "MAX_PER_USER", 3)
    answers = [api.post(REGISTRATION, helm(host=f"node-{i}")).status_code for i in range(4)]
    assert answers == [201, 201, 201, 409]
    assert Integration.objects.count() == 3
