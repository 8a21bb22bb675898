"""Re-run an ended sequence: a new execution in its stage with the same input, queued like any other, linked
both ways, audited with its reason; in a new context for a whole delivery; refused while it runs."""

import pytest

from sequences.models import ControlAction, Event, SequenceExecution as SE, TaskExecution as TE
from sequences.configuration import update_shipyard
from tests.helpers import current_task


def runs(context, stage="dev"):
    return list(SE.objects.filter(context=context, stage=stage).order_by("id"))


def retrigger(ctl, context, key=None, project="sockshop", **body):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return ctl.post(f"/api/controlPlane/v1/sequence/{project}/{context}/retrigger", body, **headers)


def failed_delivery(ctl, tag="1.0"):
    context = ctl.trigger(tag=tag)
    ctl.finish(current_task(context), result="fail")
    assert runs(context)[-1].state == SE.FINISHED
    return context


def test_a_failed_delivery_runs_again_in_its_stage_with_the_same_input(ctl, sockshop):
    context = failed_delivery(ctl)
    answer = retrigger(ctl, context, stage="dev", sequence="delivery", reason="flaky registry")
    assert answer.status_code == 201, answer.json()
    first, again = runs(context)
    assert answer.json() == {"keptnContext": context, "executionId": str(again.execution_id), "stage": "dev",
                             "sequence": "delivery", "service": "carts", "state": "started",
                             "rerunOf": {"keptnContext": context, "executionId": str(first.execution_id)}}
    assert again.rerun_of == first and again.input_data == first.input_data
    task = again.task_executions.get()
    assert (task.name, task.state) == ("deployment", TE.TRIGGERED)
    triggered = Event.objects.get(event_id=again.triggered_id)
    assert (triggered.type, triggered.source, triggered.outcome) == (
        "sh.keptn.event.dev.delivery.triggered", "bosun (re-run)", Event.EMITTED)
    assert triggered.payload["data"]["configurationChange"] == first.input_data["configurationChange"]
    listed = {e["_id"]: e for e in ctl.executions(keptnContext=context)["sequenceExecutions"]}
    assert listed[str(again.execution_id)]["rerunOf"]["_id"] == str(first.execution_id)
    assert [r["_id"] for r in listed[str(first.execution_id)]["rerunAs"]] == [str(again.execution_id)]
    row = ControlAction.objects.get(context=context, command="retrigger")
    assert (row.actor, row.source, row.reason, row.state_before, row.state_after) == (
        "operator (token control)", "api", "flaky registry", "finished", "started")


def test_a_re_run_waits_in_its_lane_behind_the_sequence_that_holds_it(ctl, sockshop):
    context = failed_delivery(ctl)
    holder = ctl.trigger(tag="2.0")
    assert retrigger(ctl, context, stage="dev").json()["state"] == "waiting"
    holding = SE.objects.get(context=holder, stage="dev")
    while holding.state != SE.FINISHED:  # each of dev's tasks passes
        ctl.finish(holding.task_executions.order_by("-index").first())
        holding.refresh_from_db()
    assert runs(context)[-1].state == SE.STARTED  # the lane went to the re-run


@pytest.mark.parametrize("end", ["abort", "timeout"])
def test_an_aborted_or_timed_out_sequence_may_be_re_run(ctl, sockshop, end):
    context = ctl.trigger()
    if end == "abort":
        ctl.control(context, "abort", mode="force")
    else:
        from sequences.transitions import timeouts
        from django.utils import timezone
        task = current_task(context)
        TE.objects.filter(pk=task.pk).update(start_deadline=timezone.now())
        timeouts.fire_due(timezone.now())
    assert runs(context)[-1].state in (SE.ABORTED, SE.TIMED_OUT)
    assert retrigger(ctl, context, stage="dev").status_code == 201


def test_a_sequence_that_has_not_ended_is_not_re_run(ctl, sockshop):
    context = ctl.trigger()
    answer = retrigger(ctl, context, stage="dev", reason="too soon")
    assert answer.status_code == 409
    assert answer.json() == {"code": 409, "state": "started", "message": (
        "Sequence 'delivery' in stage 'dev' is started; it cannot be re-run. Abort it first, or wait for it to "
        "end.")}
    assert len(runs(context)) == 1 and not ControlAction.objects.filter(command="retrigger").exists()


def test_a_whole_delivery_runs_again_from_its_first_stage_in_a_new_context(ctl, sockshop):
    context = failed_delivery(ctl)
    answer = retrigger(ctl, context, stage="dev", newContext=True, reason="from the start")
    assert answer.status_code == 201
    new = answer.json()["keptnContext"]
    assert new != context
    again = SE.objects.get(context=new)
    assert again.root and again.rerun_of == runs(context)[0] and again.state == SE.STARTED
    assert ControlAction.objects.get(command="retrigger").context == context  # in the audit of the original


def test_what_cannot_be_re_run_is_refused_with_words_and_nothing_is_stored(ctl, sockshop):
    context = failed_delivery(ctl)
    cases = [
        ({"stage": "qa"}, 404, f"Context {context} has no sequence in stage 'qa'."),
        ({"stage": "dev", "sequence": "rollback"}, 404, f"Context {context} has no sequence 'rollback' in stage 'dev'."),
        ({"stage": ""}, 400, "Invalid request: stage: String should have at least 1 character"),
    ]
    for body, code, message in cases:
        answer = retrigger(ctl, context, **body)
        assert (answer.status_code, answer.json().get("message") or answer.json()) == (code, message), body
    assert retrigger(ctl, "no-such-context", stage="dev").status_code == 404
    assert retrigger(ctl, context, project="nope", stage="dev").status_code == 404
    update_shipyard(sockshop, sockshop.shipyard.replace("name: delivery", "name: delivery-v2", 1))
    gone = retrigger(ctl, context, stage="dev")
    assert gone.status_code == 409
    assert gone.json()["message"] == ("Stage 'dev' of project 'sockshop' has no sequence 'delivery' any more "
                                      "(the shipyard changed): it cannot be re-run.")
    assert len(runs(context)) == 1 and not ControlAction.objects.filter(command="retrigger").exists()


def test_a_repeated_idempotency_key_re_runs_once(ctl, sockshop):
    context = failed_delivery(ctl)
    first = retrigger(ctl, context, key="rerun-1", stage="dev")
    second = retrigger(ctl, context, key="rerun-1", stage="dev")
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json() == second.json()
    assert len(runs(context)) == 2


def test_a_viewer_may_not_re_run(viewer_api, ctl, sockshop):
    context = failed_delivery(ctl)
    assert retrigger(viewer_api, context, stage="dev").status_code == 403
    assert len(runs(context)) == 1


def test_the_bridge_offers_re_run_on_an_ended_stage_and_links_both_ways(ctl, sockshop, admin_user):
    from django.test import Client

    context = failed_delivery(ctl)
    browser = Client()
    browser.force_login(admin_user)
    page = browser.get(f"/bridge/project/sockshop/sequence/{context}").content.decode()
    first = runs(context)[0]
    assert f'data-open-dialog="rerun-{first.id}" data-rerun-stage="dev"' in page
    assert 'name="new_context"' in page  # the context's first stage may run again as a new delivery
    done = browser.post(f"/bridge/project/sockshop/sequence/{context}/rerun",
                        {"stage": "dev", "sequence": "delivery", "reason": "retry the build"}, follow=True)
    page = done.content.decode()
    assert "Re-run: delivery of carts in dev is started." in page
    again = runs(context)[-1]
    assert again.rerun_of == first
    assert page.count("↻ Re-run as") == 1 and page.count("↻ Re-run of") == 1
    assert '<span class="gantt-label">dev · deployment (re-run)</span>' in page
    assert f'data-open-dialog="rerun-{first.id}"' not in page  # only the latest run of a stage is offered
    refused = browser.post(f"/bridge/project/sockshop/sequence/{context}/rerun", {"stage": "dev"}, follow=True)
    assert "Sequence &#x27;delivery&#x27; in stage &#x27;dev&#x27; is started; it cannot be re-run." in (
        refused.content.decode())
    ctl.finish(again.task_executions.get(), result="fail")
    fresh = browser.post(f"/bridge/project/sockshop/sequence/{context}/rerun",
                         {"stage": "dev", "sequence": "delivery", "new_context": "on"})
    new = SE.objects.get(rerun_of=again)
    assert new.context != context
    assert fresh["Location"] == f"/bridge/project/sockshop/sequence/{new.context}#stage-dev"


def test_admin_re_runs_the_selected_ended_sequences_through_the_same_function(ctl, sockshop, admin_user):
    from django.test import Client

    ended = failed_delivery(ctl, tag="1.0")
    running = ctl.trigger(tag="2.0", service="orders")
    browser = Client()
    browser.force_login(admin_user)
    selected = [runs(ended)[0].pk, runs(running)[0].pk]
    url = "/admin/sequences/sequenceexecution/"
    page = browser.post(url, {"action": "rerun", "_selected_action": selected})
    assert page.status_code == 200 and b'name="reason"' in page.content and len(runs(ended)) == 1
    done = browser.post(url, {"action": "rerun", "_selected_action": selected, "confirmed": "yes",
                              "reason": "from admin"}, follow=True).content.decode()
    assert "re-run, started" in done
    assert "is started; it cannot be re-run" in done
    assert len(runs(ended)) == 2 and len(runs(running)) == 1
    row = ControlAction.objects.get(command="retrigger")
    assert (row.source, row.actor, row.reason) == ("admin", "admin-user", "from admin")


def test_aborting_a_context_also_aborts_its_re_run_waiting_behind_its_own_holder(ctl, ops):
    context = ctl.trigger(project="ops")
    ctl.control(context, "abort", project="ops", mode="force")
    holder = ctl.trigger(project="ops", context=context, sequence="remediation")  # its context holds the lane
    assert holder == context
    assert retrigger(ctl, context, project="ops", stage="dev", sequence="delivery").json()["state"] == "waiting"
    assert ctl.control(context, "abort", project="ops", mode="kill").status_code == 200
    left = SE.objects.filter(context=context).exclude(state__in=SE.TERMINAL)
    assert not left.exists()
    assert not TE.objects.filter(sequence_execution__context=context, state__in=TE.OPEN).exists()
