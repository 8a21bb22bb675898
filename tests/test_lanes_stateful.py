"""Random interleavings of triggers and task events over several lanes keep the lane rules."""

import uuid

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from sequences import flow
from sequences.models import Event, Lane, Project, SequenceExecution, TaskExecution
from sequences.projects import create_project

SE = SequenceExecution
SHIPYARD = """\
apiVersion: spec.keptn.sh/0.2.3
kind: Shipyard
metadata: {name: lanes}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deploy}, {name: check}]
    - name: prod
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks: [{name: deploy}]
"""
SERVICES = ["a", "b"]
HOLDING = (SE.STARTED, SE.WAITING_FOR_APPROVAL, SE.ABORTING)


class LaneMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        for model in (Event, TaskExecution, SE, Lane, Project):
            model.objects.all().delete()
        self.project = create_project("lanes", SHIPYARD, services=SERVICES)

    def send(self, raw):
        receipt = flow.receive_event(raw)
        assert receipt.code < 500
        return receipt

    def task_event(self, task, kind, source, result="pass", status="succeeded"):
        return self.send({"id": str(uuid.uuid4()), "source": source, "type": f"sh.keptn.event.{task.name}.{kind}",
                          "triggeredid": task.triggered_id, "data": {"result": result, "status": status}})

    def open_tasks(self):
        return list(TaskExecution.objects.open().order_by("id"))

    @rule(service=st.sampled_from(SERVICES))
    def trigger(self, service):
        receipt = self.send({"id": str(uuid.uuid4()), "source": "t", "type": "sh.keptn.event.dev.delivery.triggered",
                             "data": {"project": "lanes", "stage": "dev", "service": service}})
        assert receipt.code == 202

    @precondition(lambda self: TaskExecution.objects.open().exists())
    @rule(pick=st.integers(0, 10), source=st.sampled_from(["x", "y"]))
    def start(self, pick, source):
        tasks = self.open_tasks()
        assert self.task_event(tasks[pick % len(tasks)], "started", source).code == 202

    @precondition(lambda self: TaskExecution.objects.open().exists())
    @rule(pick=st.integers(0, 10), source=st.sampled_from(["x", "y"]),
          result=st.sampled_from(["pass", "pass", "warning", "fail"]))
    def finish(self, pick, source, result):
        tasks = self.open_tasks()
        assert self.task_event(tasks[pick % len(tasks)], "finished", source, result).code == 202

    @precondition(lambda self: TaskExecution.objects.exclude(state__in=TaskExecution.OPEN).exists())
    @rule(source=st.sampled_from(["x", "late"]))
    def late_event_for_a_closed_task(self, source):
        closed = TaskExecution.objects.exclude(state__in=TaskExecution.OPEN).order_by("?").first()
        before = list(SE.objects.values_list("id", "state").order_by("id"))
        assert self.task_event(closed, "finished", source, "fail").code == 409
        assert list(SE.objects.values_list("id", "state").order_by("id")) == before

    @invariant()
    def one_context_holds_a_lane(self):
        lanes = {}
        for run in SE.objects.filter(holds_lane=True):
            lanes.setdefault(run.lane_key, set()).add(run.context)
        assert all(len(contexts) == 1 for contexts in lanes.values()), lanes
        assert not SE.objects.filter(state=SE.STARTED, holds_lane=False).exists()

    @invariant()
    def tasks_run_only_for_started_sequences(self):
        for task in TaskExecution.objects.open().select_related("sequence_execution"):
            assert task.sequence_execution.state in HOLDING, (task, task.sequence_execution.state)
        assert not TaskExecution.objects.filter(sequence_execution__state=SE.WAITING).exists()

    @invariant()
    def a_free_lane_has_nobody_waiting_and_the_queue_is_fifo(self):
        for lane in Lane.objects.all():
            runs = SE.objects.in_lane(lane.project_id, lane.stage, lane.service)
            first_waiting = runs.filter(state=SE.WAITING).order_by("id").first()
            if first_waiting is None:
                continue
            assert runs.filter(holds_lane=True).exists(), "a sequence waits in a free lane"
            # nobody triggered after the first waiting one has started
            assert not runs.filter(id__gt=first_waiting.id, started_at__isnull=False).exists()


@pytest.mark.postgres
@pytest.mark.django_db
def test_random_interleavings_keep_the_lane_rules():
    run_state_machine_as_test(
        LaneMachine,
        settings=settings(max_examples=25, stateful_step_count=30, deadline=None,
                          suppress_health_check=list(HealthCheck)),
    )
