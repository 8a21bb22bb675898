"""Rules 2 and 3: tasks one after another, several executors, results, stop on fail, chaining."""

import pytest

from sequences.models import Event, SequenceExecution, TaskExecution
from tests.helpers import current_task, run_of



def finish_all(api, context, stage="dev", name="delivery", result="pass"):
    while run_of(context, stage, name).state == SequenceExecution.STARTED:
        api.finish(current_task(context, stage, name), result=result)


def test_tasks_run_one_after_another_and_the_sequence_finishes_pass(api, sockshop):
    context = api.trigger()
    seen = []
    for _ in range(4):
        task = current_task(context)
        seen.append(task.name)
        api.task_event(task, "started")
        api.finish(task)
    run = run_of(context)
    assert seen == ["deployment", "test", "evaluation", "release"]
    assert (run.state, run.result, run.status) == (SequenceExecution.FINISHED, "pass", "succeeded")
    finished = Event.objects.get(type="sh.keptn.event.dev.delivery.finished", context=context)
    assert finished.payload["triggeredid"] == run.triggered_id
    assert finished.payload["data"]["result"] == "pass"


def test_a_task_waits_for_every_executor_that_started_it(api, sockshop):
    context = api.trigger()
    task = current_task(context)
    api.task_event(task, "started", source="helm")
    api.task_event(task, "started", source="notifier")
    api.finish(task, source="helm")
    assert current_task(context).name == "deployment"
    assert TaskExecution.objects.get(pk=task.pk).state == TaskExecution.STARTED
    api.finish(task, source="notifier", result="warning")
    done = TaskExecution.objects.get(pk=task.pk)
    assert (done.state, done.result) == (TaskExecution.FINISHED, "warning")
    assert current_task(context).name == "test"


def test_a_finished_without_started_counts_as_both(api, sockshop):
    context = api.trigger()
    task = current_task(context)
    api.task_event(task, "started", source="helm")
    api.finish(task, source="late-joiner")  # never started: counts as started and finished
    assert current_task(context).name == "deployment"  # helm has not finished yet
    api.finish(task, source="helm")
    assert current_task(context).name == "test"
    assert set(TaskExecution.objects.get(pk=task.pk).executors) == {"helm", "late-joiner"}


@pytest.mark.parametrize("result, status", [("fail", "succeeded"), ("pass", "errored"), (None, "unknown")])
def test_a_failed_or_errored_task_ends_the_sequence_failed(api, sockshop, result, status):
    context = api.trigger()
    response = api.task_event(current_task(context), "finished", result=result, status=status)
    assert response.status_code == 202
    run = run_of(context)
    assert (run.state, run.result) == (SequenceExecution.FINISHED, "fail")
    assert run.task_executions.count() == 1
    assert not SequenceExecution.objects.filter(stage="staging").exists()


def test_one_failing_executor_fails_the_task_even_if_others_pass(api, sockshop):
    context = api.trigger()
    task = current_task(context)
    api.task_event(task, "started", source="a")
    api.task_event(task, "started", source="b")
    api.finish(task, source="a", result="pass")
    api.finish(task, source="b", result="fail")
    assert run_of(context).result == "fail"


def test_a_warning_goes_on_and_the_sequence_reports_warning(api, sockshop):
    context = api.trigger()
    api.finish(current_task(context), result="warning")
    finish_all(api, context)
    assert run_of(context).result == "warning"


def test_a_passed_delivery_chains_into_the_next_stage_in_the_same_context(api, sockshop):
    context = api.trigger()
    finish_all(api, context)
    staging = run_of(context, "staging")
    assert staging.state == SequenceExecution.STARTED
    assert staging.input_data["configurationChange"]["values"]["image"] == "docker.io/keptnexamples/carts:0.11.1"
    assert current_task(context, "staging").name == "deployment"
    assert Event.objects.filter(type="sh.keptn.event.staging.delivery.triggered", context=context).exists()


def test_a_failed_production_delivery_fires_the_rollback_and_nothing_else(api, sockshop):
    context = api.trigger()
    finish_all(api, context)
    finish_all(api, context, "staging")
    api.finish(current_task(context, "production"), result="fail")
    rollback = run_of(context, "production", "rollback")
    assert rollback.state == SequenceExecution.STARTED
    assert current_task(context, "production", "rollback").name == "rollback"
    api.finish(current_task(context, "production", "rollback"))
    assert run_of(context, "production", "rollback").result == "pass"


def test_a_rollback_does_not_wait_behind_other_contexts_queued_in_its_lane(api, sockshop):
    """The same-context exemption: the rollback goes before the delivery queued behind the failed one."""
    first = api.trigger(tag="1")
    finish_all(api, first)
    finish_all(api, first, "staging")
    second = api.trigger(tag="2")
    finish_all(api, second)
    finish_all(api, second, "staging")
    assert run_of(second, "production").state == SequenceExecution.WAITING
    api.finish(current_task(first, "production"), result="fail")
    assert run_of(first, "production", "rollback").state == SequenceExecution.STARTED
    assert run_of(second, "production").state == SequenceExecution.WAITING
    api.finish(current_task(first, "production", "rollback"))
    assert run_of(second, "production").state == SequenceExecution.STARTED
