"""An Idempotency-Key belongs to one user and one request: reused for another, it is a 409."""

from sequences.models import SequenceExecution as SE
from tests.conftest import ControlApi
from tests.helpers import Snapshot, run_of


def test_a_key_reused_for_another_command_on_another_context_is_a_409(ctl, operator_user, sockshop):
    first = ctl.trigger(service="carts")
    second = ctl.trigger(service="orders")
    assert ctl.control(first, "pause", key="K1").status_code == 200
    before = Snapshot()
    response = ctl.control(second, "abort", mode="force", key="K1")
    assert response.status_code == 409
    assert "already used for another request" in response.json()["message"]
    assert before.unchanged()
    assert run_of(second).state == SE.STARTED
    # the same request again is answered as the first time
    again = ctl.control(first, "pause", key="K1")
    assert again.status_code == 200 and again.json()["state"] == "paused"


def test_keys_of_different_users_do_not_collide(ctl, admin_api, sockshop):
    first = ctl.trigger(service="carts")
    second = ctl.trigger(service="orders")
    assert ctl.control(first, "pause", key="shared").status_code == 200
    other = ControlApi(None)
    other.headers = admin_api.headers
    response = other.control(second, "pause", key="shared")
    assert response.status_code == 200
    assert run_of(second).state == SE.PAUSED
