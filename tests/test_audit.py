"""Every control command is recorded: who, from where, why, when, state before and after."""

import uuid

from django.test import Client

from sequences.models import ControlAction, SequenceExecution as SE, TaskExecution
from tests.helpers import current_task, run_of



def test_control_commands_are_audited_and_readable_per_context(ctl, sockshop):
    context = ctl.trigger()
    key = str(uuid.uuid4())
    ctl.control(context, "pause", reason="change freeze", key=key)
    ctl.post(f"/api/controlPlane/v1/sequence/sockshop/{context}/control", {"state": "resume"},
             HTTP_X_BOSUN_SOURCE="cli")
    ctl.task_command(current_task(context), "finish", result="pass", status="succeeded", reason="done by hand")
    trail = ctl.get(f"/api/controlPlane/v1/sequence/sockshop/{context}/audit").json()["actions"]
    assert [a["command"] for a in trail] == ["pause", "resume", "finish"]
    pause, resume, finish = trail
    assert (pause["actor"], pause["source"], pause["reason"]) == ("operator (token control)", "api", "change freeze")
    assert (pause["stateBefore"], pause["stateAfter"], pause["idempotencyKey"]) == ("started", "paused", key)
    assert resume["source"] == "cli"
    assert (finish["task"], finish["stateBefore"], finish["stateAfter"]) == ("deployment", "triggered", "finished")


def test_a_refused_command_is_not_recorded_as_done(ctl, sockshop):
    context = ctl.trigger()
    assert ctl.control(context, "resume").status_code == 409
    assert not ControlAction.objects.exists()


def test_admin_actions_pause_resume_and_abort_through_the_same_functions(admin_user, ctl, sockshop):
    context = ctl.trigger()
    run = run_of(context)
    browser = Client()
    browser.force_login(admin_user)
    url = "/admin/sequences/sequenceexecution/"
    for action, state in (("pause", SE.PAUSED), ("resume", SE.STARTED), ("abort_force", SE.ABORTED)):
        before = run_of(context).state
        # first an intermediate page: what it affects and a reason; nothing changes yet
        page = browser.post(url, {"action": action, "_selected_action": [run.pk]})
        assert page.status_code == 200 and b'name="reason"' in page.content and b"sockshop/dev/carts" in page.content
        assert run_of(context).state == before
        response = browser.post(url, {"action": action, "_selected_action": [run.pk], "confirmed": "yes",
                                      "reason": f"{action} from admin"}, follow=True)
        assert response.status_code == 200
        assert run_of(context).state == state
    trail = list(ControlAction.objects.values_list("command", "source", "actor", "reason"))
    assert trail == [("pause", "admin", "admin-user", "pause from admin"),
                     ("resume", "admin", "admin-user", "resume from admin"),
                     ("abort:force", "admin", "admin-user", "abort_force from admin")]


def test_admin_shows_a_sequence_but_no_form_can_set_its_state(admin_user, ctl, sockshop):
    context = ctl.trigger()
    run = run_of(context)
    browser = Client()
    browser.force_login(admin_user)
    page = browser.get(f"/admin/sequences/sequenceexecution/{run.pk}/change/")
    assert page.status_code == 200
    assert b'name="state"' not in page.content
    html = page.content.decode()
    assert 'name="_save"' not in html and "/delete/" not in html  # a record to read, not to edit or delete
    assert f'href="/bridge/project/sockshop/sequence/{context}"' in html
    assert '<pre class="bosun-json"' in html and '\n  "configurationChange": {' in html.replace("&quot;", '"')
    listing = browser.get("/admin/sequences/sequenceexecution/", {"service": "carts"}).content.decode()
    assert context in listing and ">sockshop<" in listing  # the project as it was typed
    assert context not in browser.get("/admin/sequences/sequenceexecution/", {"service": "orders"}).content.decode()
    task = run.task_executions.first()
    html = browser.get(f"/admin/sequences/taskexecution/{task.pk}/change/").content.decode()
    assert f'href="/bridge/project/sockshop/sequence/{context}#task-{task.triggered_id}"' in html
    assert 'name="_save"' not in html
    browser.post(f"/admin/sequences/sequenceexecution/{run.pk}/change/", {"state": "finished"})
    assert run_of(context).state == SE.STARTED


def test_admin_kills_a_task_and_retries_the_sequence_from_it_through_the_same_functions(admin_user, ctl, sockshop):
    context = ctl.trigger()
    task = run_of(context).task_executions.get()
    browser = Client()
    browser.force_login(admin_user)
    url = "/admin/sequences/taskexecution/"
    page = browser.post(url, {"action": "kill", "_selected_action": [task.pk]})
    assert page.status_code == 200 and b'name="reason"' in page.content
    assert TaskExecution.objects.get(pk=task.pk).state == TaskExecution.TRIGGERED  # nothing yet
    done = browser.post(url, {"action": "kill", "_selected_action": [task.pk], "confirmed": "yes",
                              "reason": "wrong image"}, follow=True)
    assert [str(m) for m in done.context["messages"]] == [f"{task}: killed"]
    assert (run_of(context).state, run_of(context).result) == (SE.FINISHED, "fail")
    done = browser.post(url, {"action": "retry", "_selected_action": [task.pk], "confirmed": "yes",
                              "reason": "image fixed"}, follow=True)
    assert [str(m) for m in done.context["messages"]] == [f"{task}: retried, the sequence is started"]
    attempts = list(run_of(context).task_executions.order_by("attempt").values_list("attempt", "state"))
    assert attempts == [(1, TaskExecution.KILLED), (2, TaskExecution.TRIGGERED)]
    trail = list(ControlAction.objects.values_list("command", "source", "reason"))
    assert [row[1:] for row in trail] == [("admin", "wrong image"), ("admin", "image fixed")]
