"""Input that once answered 500 (deep JSON, impossible times, huge page keys, deep shipyards) gets a clear 4xx."""

import pytest
from django.test import Client

from sequences.models import Event, Project
from tests.helpers import Snapshot, trigger_body


@pytest.mark.parametrize("content_type", ["application/json", "application/cloudevents+json", "text/plain",
                                          "application/cloudevents-batch+json"])
def test_json_nested_ten_thousand_levels_is_a_400(api, sockshop, content_type):
    before = Snapshot()
    body = "[" * 10_000 + "]" * 10_000 if content_type.endswith("batch+json") else '{"a":' * 10_000 + "1" + "}" * 10_000
    response = api.post("/api/v1/event", body, content_type=content_type)
    assert response.status_code == 400, response.content
    assert "deep" in response.json()["message"]
    assert before.unchanged()


@pytest.mark.parametrize("moment", ["2024-02-30T00:00:00Z", "2024-13-01T00:00:00Z", "2024-01-01T25:00:00Z",
                                    "2024-01-01T00:00:00+25:00", "0000-01-01T00:00:00Z", "yesterday"])
def test_an_impossible_time_is_a_400(api, sockshop, moment):
    before = Snapshot()
    response = api.post("/api/v1/event", {**trigger_body(), "time": moment})
    assert response.status_code == 400
    assert moment in response.json()["message"]
    assert before.unchanged()
    for path in ("/api/v1/event", "/api/controlPlane/v1/sequence/sockshop"):
        assert api.get(path, fromTime=moment).status_code == 400
    assert api.get("/api/controlPlane/v1/sequence/sockshop", beforeTime=moment).status_code == 400


def test_an_event_without_time_is_stamped_on_arrival(api, sockshop):
    context = api.trigger()
    stored = Event.objects.filter(context=context, type="sh.keptn.event.dev.delivery.triggered").get()
    assert stored.payload["time"].endswith("Z")


@pytest.mark.parametrize("key", [str(2**64), "9" * 40, "-1", "１２"])
def test_a_page_key_beyond_64_bits_is_a_400(api, sockshop, key):
    for path in ("/api/controlPlane/v1/sequence-execution", "/api/controlPlane/v1/sequence/sockshop",
                 "/api/v1/event"):
        response = api.get(path, project="sockshop", nextPageKey=key)
        assert response.status_code == 400, (path, response.content)
        assert "nextPageKey" in response.json()["message"]


def test_a_shipyard_nested_900_levels_is_a_400(admin_api, db):
    deep = "x: " + "[" * 900 + "]" * 900
    shipyard = "apiVersion: spec.keptn.sh/0.2.3\nkind: Shipyard\nmetadata: {name: p}\nspec: {stages: []}\n" + deep
    response = admin_api.post("/api/controlPlane/v1/project", {"name": "deep", "shipyard": shipyard})
    assert response.status_code == 400
    assert "nested more than 64 levels" in response.json()["message"]
    assert not Project.objects.filter(name="deep").exists()


def test_a_project_name_with_a_slash_in_the_switcher_is_a_404(admin_user, sockshop):
    client = Client()
    client.force_login(admin_user)
    assert client.get("/bridge/", {"project": "a/b"}).status_code == 404
    assert client.get("/bridge/", {"project": "sockshop"}).status_code == 302
