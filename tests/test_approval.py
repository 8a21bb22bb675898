"""The built-in approval task: automatic or manual per the previous result; it holds the lane."""


from sequences.models import ControlAction, SequenceExecution as SE, TaskExecution as TE
from tests.helpers import current_task, run_of



def deliver_dev(ctl, result="pass", tag="1"):
    context = ctl.trigger(project="ops", tag=tag)
    ctl.finish(current_task(context))
    ctl.finish(current_task(context), result=result)
    ctl.finish(current_task(context))
    return context


def test_a_pass_is_approved_automatically(ctl, ops):
    context = deliver_dev(ctl, "pass")
    approval = run_of(context, "production").task_executions.get(name="approval")
    assert (approval.state, approval.result) == (TE.FINISHED, "pass")
    assert current_task(context, "production").name == "deployment"


def test_a_warning_waits_for_a_person_and_holds_the_lane(ctl, ops):
    context = deliver_dev(ctl, "warning")
    run = run_of(context, "production")
    assert (run.state, run.holds_lane) == (SE.WAITING_FOR_APPROVAL, True)
    other = deliver_dev(ctl, "pass", tag="2")
    assert run_of(other, "production").state == SE.WAITING
    approval = current_task(context, "production")
    response = ctl.task_command(approval, "approve", reason="looks fine")
    assert response.status_code == 200
    assert run_of(context, "production").state == SE.STARTED
    assert current_task(context, "production").name == "deployment"
    assert ControlAction.objects.get(command="approve").reason == "looks fine"


def test_a_decline_needs_a_reason_and_fails_the_sequence(ctl, ops):
    context = deliver_dev(ctl, "warning")
    approval = current_task(context, "production")
    assert ctl.task_command(approval, "decline").status_code == 400
    response = ctl.task_command(approval, "decline", reason="too many warnings")
    assert response.status_code == 200
    run = run_of(context, "production")
    assert (run.state, run.result) == (SE.FINISHED, "fail")
    assert "too many warnings" in run.message


def test_approving_twice_or_a_task_that_is_not_an_approval_is_409(ctl, ops):
    context = deliver_dev(ctl, "warning")
    approval = current_task(context, "production")
    ctl.task_command(approval, "approve")
    assert ctl.task_command(approval, "approve").status_code == 409
    deployment = current_task(context, "production")
    assert ctl.task_command(deployment, "approve").status_code == 409


def test_abort_while_waiting_for_approval_ends_at_once(ctl, ops):
    context = deliver_dev(ctl, "warning")
    assert ctl.control(context, "abort", project="ops", stage="production").json()["state"] == "aborted"
