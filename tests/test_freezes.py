"""Freeze windows: a sequence triggered into a frozen lane waits, saying until when and under which window; a
running one holds at its task boundary (unless the window says `running: finish`); an operator with the
permission lets one through, audited; when the window ends the engine starts the waiting work in lane order;
bad windows get a 400 naming the field and store nothing."""

from datetime import datetime, timedelta

import uuid

import pytest
from django.utils import timezone

from sequences.models import ControlAction, FreezeWindow, Project, SequenceExecution as SE
from sequences.transitions import holds
from tests.conftest import _user, ControlApi, DEMO_SHIPYARD
from sequences.models import ApiToken
from tests.helpers import current_task

FREEZE = "/api/controlPlane/v1/project/sockshop/freeze"


def iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def manager(db):
    return ControlApi(ApiToken.issue(_user("release-manager", "manage_projects", "operate_sequences"), "freeze")[1])


@pytest.fixture
def gatekeeper(db):
    return ControlApi(ApiToken.issue(_user("gatekeeper", "operate_sequences", "pass_freezes"), "gate")[1])


def freeze(api, minutes=60, **fields):
    now = timezone.now()
    body = {"name": "release-freeze", "reason": "quarter end", "start": iso(now - timedelta(minutes=1)),
            "end": iso(now + timedelta(minutes=minutes)), **fields}
    answer = api.post(FREEZE, body)
    assert answer.status_code == 201, answer.json()
    return answer.json()


def end_windows(name="release-freeze"):
    """The window's end comes: it is changed to end now (its project's freeze_key changes, as any change of a
    window does) and the engine's step for freezes runs."""
    now = timezone.now()
    window = FreezeWindow.objects.get(name=name)
    FreezeWindow.objects.filter(pk=window.pk).update(ends_at=now, next_end=now)
    Project.objects.filter(pk=window.project_id).update(freeze_key=uuid.uuid4().hex)
    return holds.fire_ended(now + timedelta(milliseconds=1))


def run(context, stage="dev"):
    return SE.objects.filter(context=context, stage=stage).latest("id")


def test_a_sequence_triggered_into_a_frozen_lane_waits_and_starts_when_the_window_ends(ctl, manager, sockshop):
    window = freeze(manager, stages=["dev"])
    assert (window["active"], window["stages"], window["running"]) == (True, ["dev"], "hold")
    context = ctl.trigger()
    waiting = run(context)
    assert waiting.state == SE.WAITING and not waiting.task_executions.exists()
    listed = ctl.executions(keptnContext=context)["sequenceExecutions"][0]
    assert listed["queue"]["position"] == 1 and listed["queue"]["blockedBy"] is None
    assert listed["queue"]["frozen"] == {"until": window["end"], "window": "release-freeze",
                                         "description": f"frozen until {window['end'][:19]}Z (window 'release-freeze')"}
    assert listed["outcome"] == {"key": "waiting", "label": "Waiting #1 (frozen)"}
    assert "let-through" in listed["commands"] and "resume" not in listed["commands"]
    assert end_windows() == 1
    assert run(context).state == SE.STARTED
    assert current_task(context).name == "deployment"


def test_windows_narrowed_to_a_stage_or_a_service_freeze_only_those_lanes(ctl, manager, sockshop):
    freeze(manager, stages=["staging"], services=["carts"])
    assert run(ctl.trigger(service="carts")).state == SE.STARTED  # dev is not frozen
    frozen = ctl.trigger(service="carts", stage="staging")
    assert run(frozen, "staging").state == SE.WAITING
    assert run(ctl.trigger(service="orders", stage="staging"), "staging").state == SE.STARTED


def test_a_running_sequence_holds_at_its_task_boundary_and_goes_on_when_the_window_ends(ctl, manager, sockshop):
    context = ctl.trigger()
    freeze(manager)
    ctl.finish(current_task(context))  # deployment ends inside the window: test is not triggered
    held = run(context)
    assert (held.state, held.frozen_by) == (SE.PAUSED, "release-freeze")
    assert held.task_executions.count() == 1
    listed = ctl.executions(keptnContext=context)["sequenceExecutions"][0]
    assert listed["outcome"]["label"] == "Held (freeze window 'release-freeze')"
    assert "resume" not in listed["commands"] and "let-through" in listed["commands"]
    resumed = ctl.control(context, "resume")  # a person's resume does not lift a freeze
    assert resumed.status_code == 409
    assert resumed.json()["message"] == (
        f"Nothing in context {context} can be resumed: it is paused. Its delivery in dev holds under the freeze "
        "window 'release-freeze': it goes on when the window ends, or when somebody lets it through.")
    end_windows()
    going = run(context)
    assert (going.state, going.frozen_by) == (SE.STARTED, "")
    assert current_task(context).name == "test"


def test_under_running_finish_a_running_sequence_runs_to_its_end(ctl, manager, sockshop):
    context = ctl.trigger()
    freeze(manager, running="finish")
    ctl.finish(current_task(context))
    assert run(context).state == SE.STARTED and current_task(context).name == "test"


def test_an_operator_with_the_permission_lets_one_sequence_through_with_a_reason(ctl, manager, gatekeeper, sockshop):
    freeze(manager)
    first, second = ctl.trigger(tag="1"), ctl.trigger(tag="2")
    path = f"/api/controlPlane/v1/sequence/sockshop/{second}/let-through"
    refused = ctl.post(path, {"stage": "dev", "reason": "hotfix"})
    assert refused.status_code == 403
    assert refused.json()["message"] == ("User 'operator' may not let a sequence through a freeze window; ask an "
                                         "admin for the permission.")
    assert gatekeeper.post(path, {"stage": "dev"}).status_code == 400  # no reason
    answer = gatekeeper.post(path, {"stage": "dev", "reason": "hotfix for the outage"})
    assert answer.status_code == 200, answer.json()
    assert (answer.json()["previousState"], answer.json()["state"]) == ("waiting", "started")
    assert run(second).state == SE.STARTED and run(first).state == SE.WAITING  # only that one passed
    row = ControlAction.objects.get(command="let-through")
    assert (row.actor, row.reason, row.context) == ("gatekeeper (token gate)", "hotfix for the outage", second)
    again = gatekeeper.post(path, {"stage": "dev", "reason": "again"})
    assert again.status_code == 409
    assert again.json()["message"].startswith("Stage 'dev' of context")
    ctl.finish(current_task(second))  # later task boundaries do not hold it either
    assert run(second).state == SE.STARTED and current_task(second).name == "test"


def test_a_pass_through_a_freeze_is_not_handed_on_to_a_newer_delivery(ctl, manager, gatekeeper, sockshop):
    """Under `newest`, a newer waiting delivery normally takes an older one's turn; in a frozen lane only one
    that was let through may: the pass is given to one execution, and the newer one waits for the window."""
    from sequences.configuration import update_shipyard
    update_shipyard(sockshop, DEMO_SHIPYARD)  # dev: queue newest
    freeze(manager)
    older, newer = ctl.trigger(tag="1"), ctl.trigger(tag="2")
    answer = gatekeeper.post(f"/api/controlPlane/v1/sequence/sockshop/{older}/let-through",
                             {"stage": "dev", "reason": "the fix that was reviewed"})
    assert answer.status_code == 200 and answer.json()["state"] == "started", answer.json()
    assert (run(older).state, run(newer).state) == (SE.STARTED, SE.WAITING)
    assert current_task(older).name == "deployment"
    for _ in range(4):  # deployment, test, evaluation, release
        ctl.finish(current_task(older))
    assert run(older).state == SE.FINISHED
    assert run(newer).state == SE.WAITING  # its lane is free but frozen
    end_windows()
    assert run(newer).state == SE.STARTED


def test_a_held_sequence_is_let_through_at_once(ctl, manager, gatekeeper, sockshop):
    context = ctl.trigger()
    freeze(manager)
    ctl.finish(current_task(context))
    answer = gatekeeper.post(f"/api/controlPlane/v1/sequence/sockshop/{context}/let-through",
                             {"stage": "dev", "reason": "customer waits"})
    assert answer.status_code == 200 and answer.json()["state"] == "started"
    assert current_task(context).name == "test"


def test_waiting_work_starts_in_lane_order_when_the_window_ends(ctl, manager, sockshop):
    freeze(manager)
    contexts = [ctl.trigger(tag=str(n)) for n in range(3)]
    other = ctl.trigger(service="orders")
    end_windows()
    assert [run(c).state for c in contexts] == [SE.STARTED, SE.WAITING, SE.WAITING]
    assert run(other).state == SE.STARTED


def test_deleting_a_window_lets_what_it_held_go_on(ctl, manager, sockshop):
    context = ctl.trigger()
    freeze(manager)
    ctl.finish(current_task(context))
    waiting = ctl.trigger(service="orders")
    answer = manager.delete(f"{FREEZE}/release-freeze")
    assert answer.status_code == 200, answer.json()
    assert run(context).state == SE.STARTED and run(waiting).state == SE.STARTED
    assert Project.objects.get(name="sockshop").freeze_key == ""
    assert manager.delete(f"{FREEZE}/release-freeze").status_code == 404
    assert [a.command for a in ControlAction.objects.filter(project="sockshop").order_by("id")] == [
        "freeze:create", "freeze:delete"]


def test_a_recurring_window_in_a_time_zone_is_listed_with_its_next_occurrence(ctl, manager, sockshop):
    answer = manager.post(FREEZE, {"name": "weekend", "cron": "0 18 * * fri", "duration": "2d14h",
                                   "timeZone": "Europe/Vienna", "reason": "nobody on call"})
    assert answer.status_code == 201, answer.json()
    listed = ctl.get(FREEZE).json()["windows"]
    assert [w["name"] for w in listed] == ["weekend"]
    window = listed[0]
    assert (window["cron"], window["duration"], window["timeZone"]) == ("0 18 * * fri", "62h0m0s", "Europe/Vienna")
    start = datetime.fromisoformat(window["activeUntil"] or window["nextStart"])
    vienna = start.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Vienna"))
    if window["active"]:
        assert (vienna.weekday(), vienna.hour) == (0, 8)  # ends Monday 08:00 in Vienna
    else:
        assert (vienna.weekday(), vienna.hour, vienna.minute) == (4, 18, 0)  # begins Friday 18:00 in Vienna


@pytest.mark.parametrize("body, field", [
    ({"cron": "0 25 * * *", "duration": "1h"}, "cron"),
    ({"cron": "0 22 * * fri", "duration": "soon"}, "duration"),
    ({"cron": "0 22 * * fri", "duration": "1h", "timeZone": "Mars/Olympus"}, "timeZone"),
    ({"start": "2026-12-24T18:00:00Z", "end": "2026-12-24T08:00:00Z"}, "end"),
    ({"start": "christmas", "end": "2026-12-24T08:00:00Z"}, "start"),
    ({"start": "2026-12-24T08:00:00Z", "end": "2026-12-26T08:00:00Z", "stages": ["qa"]}, "stages"),
    ({"start": "2026-12-24T08:00:00Z", "end": "2026-12-26T08:00:00Z", "services": ["payments"]}, "services"),
    ({"start": "2026-12-24T08:00:00Z", "end": "2026-12-26T08:00:00Z", "running": "stop"}, "running"),
    ({"start": "2026-12-24T08:00:00Z", "end": "2026-12-26T08:00:00Z", "cron": "0 0 * * *"}, "start"),
    ({}, "cron"),
])
def test_a_bad_window_gets_a_400_naming_the_field_and_stores_nothing(manager, sockshop, body, field):
    answer = manager.post(FREEZE, {"name": "bad", **body})
    assert answer.status_code == 400, answer.json()
    assert answer.json()["message"].startswith(f"{field}: "), answer.json()
    assert not FreezeWindow.objects.exists() and not Project.objects.get(name="sockshop").has_freezes


def test_window_names_are_unique_and_only_managers_make_windows(ctl, manager, sockshop):
    freeze(manager)
    again = manager.post(FREEZE, {"name": "release-freeze", "cron": "0 0 * * *", "duration": "1h"})
    assert again.status_code == 409 and FreezeWindow.objects.count() == 1
    refused = ctl.post(FREEZE, {"name": "mine", "cron": "0 0 * * *", "duration": "1h"})
    assert refused.status_code == 403 and FreezeWindow.objects.count() == 1
    assert ctl.delete(f"{FREEZE}/release-freeze").status_code == 403 and FreezeWindow.objects.count() == 1
    unknown = manager.post(FREEZE, {"name": "typo", "cron": "0 0 * * *", "durration": "1h"})
    assert unknown.status_code == 400 and "durration" in unknown.json()["message"]


def test_the_engine_sleeps_no_longer_than_the_next_window_end(manager, sockshop):
    from sequences.engine import Engine

    freeze(manager, minutes=0.01)
    assert Engine(max_sleep=30).seconds_to_next() < 1.0


def test_django_admin_makes_windows_with_the_same_checks_and_lets_a_sequence_through(ctl, admin_user, sockshop):
    from django.test import Client

    client = Client()
    client.force_login(admin_user)
    project = Project.objects.get(name="sockshop")
    form = {"project": project.pk, "name": "weekend", "reason": "no one on call", "stages": '["production"]',
            "services": "[]", "cron": "0 18 * * fri", "duration_text": "2d14h", "time_zone": "Mars/Olympus",
            "running": "hold"}
    page = client.post("/admin/sequences/freezewindow/add/", form)
    assert page.status_code == 200 and "is not a known time zone" in page.content.decode()
    assert not FreezeWindow.objects.exists()
    page = client.post("/admin/sequences/freezewindow/add/", {**form, "time_zone": "Europe/Vienna"})
    assert page.status_code == 302, page.content.decode()[:2000]
    window = FreezeWindow.objects.get()
    assert (window.cron, window.duration, window.stages, window.created_by) == (
        "0 18 * * fri", 62 * 3600.0, ["production"], "admin-user")
    assert ControlAction.objects.get(command="freeze:create").source == "admin"

    now = timezone.now()
    FreezeWindow.objects.create(project=project, name="now", starts_at=now - timedelta(minutes=1),
                                ends_at=now + timedelta(hours=1), next_end=now + timedelta(hours=1))
    Project.objects.filter(pk=project.pk).update(freeze_key=uuid.uuid4().hex)
    context = ctl.trigger()
    waiting = run(context)
    assert waiting.state == SE.WAITING
    listed = client.get(f"/admin/sequences/sequenceexecution/{waiting.pk}/change/").content.decode()
    assert "Let through" in listed
    answer = client.post("/admin/sequences/sequenceexecution/", {
        "action": "let_through", "_selected_action": [waiting.pk], "confirmed": "yes", "reason": "urgent fix"})
    assert answer.status_code == 302
    assert run(context).state == SE.STARTED
    assert ControlAction.objects.get(command="let-through").reason == "urgent fix"
