"""An event id Bosun could not put in a URL is refused, so every stored event can be linked to."""

import pytest
from django.test import Client

from tests.helpers import Snapshot, current_task, task_started


@pytest.mark.parametrize("event_id", ["a/b", "../x", "a b", "a?b", "a#b", "a%2Fb", "x" * 101, "ü"])
def test_an_event_id_that_cannot_be_routed_is_refused(admin_api, admin_user, sockshop, event_id):
    context = admin_api.trigger()
    before = Snapshot()
    body = task_started(current_task(context), id=event_id)
    response = admin_api.post("/api/v1/event", body)
    assert response.status_code == 400
    assert before.unchanged()
    client = Client()
    client.force_login(admin_user)
    assert client.get(f"/bridge/project/sockshop/sequence/{context}").status_code == 200
