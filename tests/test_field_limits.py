"""Fields with the wrong type, length or characters are refused and nothing is stored."""

import json

import pytest

from tests.helpers import Snapshot, trigger_body


@pytest.mark.parametrize("labels", [{"n": 1}, {"n": None}, {"n": {"x": "y"}}, ["a"]])
def test_labels_must_be_strings(api, sockshop, labels):
    before = Snapshot()
    response = api.post("/api/v1/event", trigger_body(labels=labels))
    assert response.status_code == 400
    assert "labels" in response.json()["message"]
    assert before.unchanged()


def test_a_huge_reason_is_refused_and_nothing_is_stored(ctl, sockshop):
    context = ctl.trigger()
    before = Snapshot()
    response = ctl.control(context, "pause", reason="x" * 1_000_000)
    assert response.status_code == 400
    assert "at most 2000" in response.json()["message"]
    assert before.unchanged()


@pytest.mark.parametrize("text", ['"\\ud800"', '"a\\u0000b"'])
def test_lone_surrogates_and_nul_are_refused(api, sockshop, text):
    before = Snapshot()
    body = json.dumps(trigger_body(note="PLACEHOLDER")).replace('"PLACEHOLDER"', text)
    response = api.post("/api/v1/event", body)
    assert response.status_code == 400
    assert before.unchanged()


def test_an_xml_body_is_a_415(api, sockshop):
    response = api.post("/api/v1/event", json.dumps(trigger_body()), content_type="application/xml")
    assert response.status_code == 415
    assert "application/json" in response.json()["message"]


@pytest.mark.parametrize("field,value", [("source", "s" * 201), ("gitcommitid", "g" * 101),
                                         ("triggeredid", "t" * 101)])
def test_overlong_fields_are_refused(api, sockshop, field, value):
    before = Snapshot()
    response = api.post("/api/v1/event", {**trigger_body(), field: value})
    assert response.status_code == 400
    assert field in response.json()["message"]
    assert before.unchanged()
