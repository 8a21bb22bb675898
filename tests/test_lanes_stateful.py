"""Random interleavings of triggers, task events, control commands, re-runs, retries from a task, approvals,
freeze windows and timeouts keep the lane rules."""

import uuid
from datetime import timedelta

import pytest
from django.db.models import Count
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from sequences import freeze_config
from sequences.configuration import create_project
from sequences.models import Event, FreezeWindow, Lane, Project, SequenceExecution, TaskExecution
from sequences.transitions import arrivals as intake
from sequences.transitions import commands as control
from sequences.transitions import decisions, holds, reopen
from sequences.transitions import timeouts

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
          tasks: [{name: deploy, startTimeout: 1m, retry: {limit: 1, backoff: 2m, on: [fail, timedOut]}},
                  {name: check, timeout: 5m}]
        - name: latest
          queue: newest
          tasks: [{name: deploy, startTimeout: 1m}]
        - name: hotfix
          queue: cancel-in-progress
          tasks: [{name: deploy, startTimeout: 1m}, {name: check}]
        - name: gated
          tasks: [{name: approval, properties: {pass: manual, warning: manual}, approval: {required: 2}},
                  {name: deploy, startTimeout: 1m}]
        - name: probe
          queue: parallel
          tasks: [{name: look, startTimeout: 1m}]
        - name: rollback
          triggeredOn: [{event: dev.delivery.finished, selector: {match: {result: fail}}}]
          tasks: [{name: undo}]
    - name: prod
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks: [{name: approval, properties: {pass: manual, warning: manual}, approval: {required: 2}},
                  {name: deploy}]
"""
SERVICES = ["a", "b"]
HOLDING = (SE.STARTED, SE.WAITING_FOR_APPROVAL, SE.ABORTING)
FROZEN = (SE.PAUSED, SE.ABORTING) + SE.TERMINAL  # no new task may be triggered for these
OPERATOR = control.Actor("hypothesis", "api")


class LaneMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        for model in (Event, TaskExecution, SE, Lane, Project):
            model.objects.all().delete()
        self.project = create_project("lanes", SHIPYARD, services=SERVICES)
        self.ever_paused: set[int] = set()
        self.retried: set[int] = set()  # back in the queue with their first place: others started meanwhile
        self.snapshot: dict[int, tuple[str, int]] = {}
        self.clock = timezone.now()
        # per service: when dev's lane was frozen (real time, as windows are), the last task id then, and when
        # it thawed (None while it is frozen)
        self.freezes: dict[str, list[list]] = {service: [] for service in SERVICES}

    def send(self, raw):
        receipt = intake.receive_event(raw)
        assert receipt.code < 500
        return receipt

    def task_event(self, task, kind, source, result="pass", status="succeeded"):
        return self.send({"id": str(uuid.uuid4()), "source": source, "type": f"sh.keptn.event.{task.name}.{kind}",
                          "triggeredid": task.triggered_id, "data": {"result": result, "status": status}})

    def open_tasks(self):
        return list(TaskExecution.objects.open().order_by("id"))

    @rule(service=st.sampled_from(SERVICES),
          sequence=st.sampled_from(["delivery", "delivery", "latest", "hotfix", "probe", "gated"]))
    def trigger(self, service, sequence):
        receipt = self.send({"id": str(uuid.uuid4()), "source": "t", "type": f"sh.keptn.event.dev.{sequence}.triggered",
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

    def contexts(self):
        return list(SE.objects.order_by("id").values_list("context", flat=True).distinct())

    @precondition(lambda self: SE.objects.exists())
    @rule(pick=st.integers(0, 20), stage=st.sampled_from([None, "dev", "prod"]))
    def pause(self, pick, stage):
        contexts = self.contexts()
        context = contexts[pick % len(contexts)]
        outcome = control.control_sequence("lanes", context, "pause", actor=OPERATOR, stage=stage)
        assert outcome.code in (200, 404, 409), outcome.body
        self.ever_paused |= set(SE.objects.filter(context=context, state=SE.PAUSED).values_list("id", flat=True))

    @precondition(lambda self: SE.objects.filter(state=SE.PAUSED).exists())
    @rule(pick=st.integers(0, 20))
    def resume(self, pick):
        paused = list(SE.objects.filter(state=SE.PAUSED).order_by("id"))
        run = paused[pick % len(paused)]
        outcome = control.control_sequence("lanes", run.context, "resume", actor=OPERATOR, stage=run.stage)
        assert outcome.code == (409 if run.frozen_by else 200), outcome.body  # a freeze is not resumed

    @precondition(lambda self: SE.objects.exists())
    @rule(pick=st.integers(0, 20), mode=st.sampled_from(["graceful", "force", "kill"]))
    def abort(self, pick, mode):
        contexts = self.contexts()
        outcome = control.control_sequence("lanes", contexts[pick % len(contexts)], "abort", actor=OPERATOR,
                                           mode=mode)
        assert outcome.code in (200, 409), outcome.body

    @precondition(lambda self: TaskExecution.objects.open().exists())
    @rule(pick=st.integers(0, 10), result=st.sampled_from(["pass", "fail"]))
    def force_finish(self, pick, result):
        task = self.open_tasks()[pick % len(self.open_tasks())]
        outcome = control.finish_task(task.triggered_id, result, "succeeded", "by hand", actor=OPERATOR)
        waits_for_a_decision = task.name == "approval" and task.sequence_execution.state == SE.WAITING_FOR_APPROVAL
        assert outcome.code == (409 if waits_for_a_decision else 200), outcome.body

    @precondition(lambda self: TaskExecution.objects.open().exists())
    @rule(pick=st.integers(0, 10))
    def kill_task(self, pick):
        task = self.open_tasks()[pick % len(self.open_tasks())]
        outcome = control.kill_task(task.triggered_id, "runaway", actor=OPERATOR)
        waits_for_a_decision = task.name == "approval" and task.sequence_execution.state == SE.WAITING_FOR_APPROVAL
        assert outcome.code == (409 if waits_for_a_decision else 200), outcome.body

    @precondition(lambda self: SE.objects.filter(state__in=SE.TERMINAL).exists())
    @rule(pick=st.integers(0, 20))
    def rerun(self, pick):
        ended = list(SE.objects.filter(state__in=SE.TERMINAL).order_by("id"))
        run = ended[pick % len(ended)]
        outcome = control.retrigger_sequence("lanes", run.context, actor=OPERATOR, stage=run.stage,
                                             sequence=run.name)
        assert outcome.code in (201, 409), outcome.body  # 409: a later run of it has not ended

    @precondition(lambda self: SE.objects.filter(state=SE.WAITING_FOR_APPROVAL).exists())
    @rule(pick=st.integers(0, 10), who=st.sampled_from(["p1", "p2", "p3"]), approve=st.sampled_from([True] * 4 + [False]))
    def decide(self, pick, who, approve):
        tasks = list(TaskExecution.objects.open().filter(name="approval").order_by("id"))
        if not tasks:
            return
        task = tasks[pick % len(tasks)]
        outcome = decisions.decide_approval(task.triggered_id, approve, "" if approve else "no",
                                          actor=control.Actor(who, "api"))
        assert outcome.code in (200, 409), outcome.body  # 409: it approved already, or it is not waiting

    def frozen_now(self, service) -> bool:
        periods = self.freezes[service]
        return bool(periods) and periods[-1][2] is None

    @rule(service=st.sampled_from(SERVICES))
    def freeze(self, service):
        if self.frozen_now(service):
            return
        now = timezone.now()
        last_task = TaskExecution.objects.order_by("-id").values_list("id", flat=True).first() or 0
        freeze_config.create_window(Project.objects.get(name="lanes"), {
            "name": f"freeze-{service}", "stages": ["dev"], "services": [service],
            "start": (now - timedelta(seconds=1)).isoformat(), "end": (now + timedelta(days=1)).isoformat()},
            actor="hypothesis", source="api")
        self.freezes[service].append([timezone.now(), last_task, None])

    @rule(service=st.sampled_from(SERVICES), how=st.sampled_from(["ends", "deleted"]))
    def thaw(self, service, how):
        if not self.frozen_now(service):
            return
        if how == "deleted":
            freeze_config.delete_window(Project.objects.get(name="lanes"), f"freeze-{service}", actor="hypothesis",
                                        source="api")
        else:
            now = timezone.now()
            FreezeWindow.objects.filter(name=f"freeze-{service}").update(ends_at=now, next_end=now)
            Project.objects.filter(name="lanes").update(freeze_key=uuid.uuid4().hex)  # as a change of it does
            assert holds.fire_ended(now + timedelta(milliseconds=1)) == 1
            FreezeWindow.objects.filter(name=f"freeze-{service}").delete()
            freeze_config.forget_deleted(Project.objects.get(name="lanes"))
        self.freezes[service][-1][2] = timezone.now()

    @precondition(lambda self: SE.objects.filter(state__in=(SE.WAITING, SE.PAUSED)).exists())
    @rule(pick=st.integers(0, 20))
    def let_through(self, pick):
        runs = list(SE.objects.filter(state__in=(SE.WAITING, SE.PAUSED)).order_by("id"))
        run = runs[pick % len(runs)]
        outcome = holds.let_through_command("lanes", run.context, actor=OPERATOR, stage=run.stage, reason="test")
        assert outcome.code in (200, 409), outcome.body  # 409: nothing of it is frozen

    def born_frozen(self, run) -> bool:
        """Triggered while its lane was frozen: it queued like any other, with no follow-up privilege."""
        return run.stage == "dev" and any(start <= run.triggered_at and (end is None or run.triggered_at <= end)
                                          for start, _, end in self.freezes[run.service])

    @invariant()
    def a_frozen_lane_starts_nothing(self):
        """While dev's lane of a service is frozen, no sequence starts in it and no task is triggered there
        (a retry's next attempt of the task that was running aside), unless an operator let it through."""
        for service in SERVICES:
            if not self.frozen_now(service):
                continue
            since, last_task, _ = self.freezes[service][-1]
            lane = SE.objects.filter(stage="dev", service=service, passes_freeze=False)
            assert not lane.filter(started_at__gt=since).exists(), "a sequence started in a frozen lane"
            assert not TaskExecution.objects.filter(sequence_execution__in=lane, id__gt=last_task, attempt=1).exists(), \
                "a task was triggered in a frozen lane"

    @precondition(lambda self: SE.objects.filter(state__in=(SE.FINISHED, SE.TIMED_OUT), result="fail").exists())
    @rule(pick=st.integers(0, 20))
    def retry_from_its_task(self, pick):
        ended = list(SE.objects.filter(state__in=(SE.FINISHED, SE.TIMED_OUT), result="fail").order_by("id"))
        run = ended[pick % len(ended)]
        task = run.retry_point()
        if task is None:  # it never had a task (no such stage or sequence)
            return
        outcome = reopen.retry_task(task.triggered_id, "again", actor=OPERATOR)
        if task.state == TaskExecution.KILLING:  # its processes may still run: not before the kill is confirmed
            assert outcome.code == 409 and "being killed" in outcome.body["message"], outcome.body
            return
        assert outcome.code == 200, outcome.body
        self.retried.add(run.id)
        run.refresh_from_db()
        assert run.state in (SE.STARTED, SE.WAITING, SE.WAITING_FOR_APPROVAL, SE.FINISHED), run.state

    @rule(minutes=st.sampled_from([1, 4, 11]))
    def time_passes(self, minutes):
        self.clock += timedelta(minutes=minutes)
        timeouts.fire_due(self.clock)

    @invariant()
    def no_task_is_triggered_for_a_paused_aborting_or_ended_sequence(self):
        now = {run_id: (state, count) for run_id, state, count in
               SE.objects.annotate(n=Count("task_executions")).values_list("id", "state", "n")}
        for run_id, (state, count) in now.items():
            before = self.snapshot.get(run_id)
            if before and before[0] in FROZEN and state in FROZEN:
                assert count == before[1], f"sequence {run_id} ({before[0]} -> {state}) got a new task"
        self.snapshot = now

    def teardown(self):
        """Every sequence ends terminal once its tasks finish or time out (and the freezes are lifted)."""
        for window in FreezeWindow.objects.all():
            freeze_config.delete_window(window.project, window.name, actor="hypothesis", source="api")
        for _ in range(40):
            for run in SE.objects.filter(state=SE.PAUSED):
                control.control_sequence("lanes", run.context, "resume", actor=OPERATOR, stage=run.stage)
            for task in self.open_tasks():
                for source in list(task.executors) or ["drain"]:
                    self.task_event(task, "finished", source)
            self.clock += timedelta(hours=1)
            timeouts.fire_due(self.clock)
            if not SE.objects.active().exists():
                break
        stuck = [(r.stage, r.state, r.state_before_pause, list(r.task_executions.values_list("name", "state")))
                 for r in SE.objects.active()]
        assert not stuck, stuck

    @invariant()
    def one_context_holds_a_lane(self):
        lanes = {}
        for run in SE.objects.filter(holds_lane=True):
            lanes.setdefault(run.lane_key, set()).add(run.context)
        assert all(len(contexts) == 1 for contexts in lanes.values()), lanes
        assert not SE.objects.filter(state=SE.STARTED, holds_lane=False).exclude(queue_policy=SE.PARALLEL).exists()

    @invariant()
    def tasks_run_only_for_started_sequences(self):
        for task in TaskExecution.objects.open().select_related("sequence_execution"):
            run = task.sequence_execution
            running_paused = run.state == SE.PAUSED and run.state_before_pause != SE.WAITING
            assert run.state in HOLDING or running_paused, (task, run.state)
        # a waiting sequence has no task that runs (one retried from a task keeps its ended attempts)
        assert not TaskExecution.objects.filter(sequence_execution__state=SE.WAITING,
                                                state__in=TaskExecution.UNFINISHED).exists()

    @invariant()
    def a_free_lane_has_nobody_waiting_and_the_queue_keeps_its_order(self):
        """FIFO among sequences without a policy that reorders: nobody triggered after the first waiting one
        has started, except a `newest` one (which supersedes older ones of its kind), a cancel-in-progress
        trigger that took its kind's place, a parallel one, a follow-up of the holder, or one passed over."""
        for project_id, stage, service in set(SE.objects.values_list("project_id", "stage", "service")):
            runs = SE.objects.in_lane(project_id, stage, service)
            waiting = runs.filter(state=SE.WAITING).exclude(id__in=self.ever_paused | self.retried)
            if not waiting.exists() or (stage == "dev" and self.frozen_now(service)):
                continue  # in a frozen lane, sequences wait though it is free
            assert runs.filter(holds_lane=True).exists(), "a sequence waits in a free lane"
            first = waiting.filter(queue_priority=0, queue_policy=SE.FIFO).order_by("id").first()
            if first is None:
                continue
            jumped = runs.filter(id__gt=first.id, started_at__isnull=False, queue_policy=SE.FIFO)
            jumped = jumped.exclude(name="rollback").exclude(id__in=self.ever_paused)  # follow-ups go first
            jumped = jumped.exclude(passes_freeze=True)  # let through a freeze: it went first
            assert not jumped.exists(), "a later fifo sequence started first"

    @invariant()
    def no_task_of_a_superseded_sequence_is_ever_triggered(self):
        superseded = TaskExecution.objects.filter(sequence_execution__state=SE.SUPERSEDED)
        # one retried from a task waited again (its ended attempts kept) and may be superseded there
        assert not superseded.exclude(sequence_execution_id__in=self.retried).exists()
        assert not superseded.filter(state__in=TaskExecution.UNFINISHED).exists()
        for run in SE.objects.filter(state=SE.SUPERSEDED).select_related("superseded_by"):
            newer = run.superseded_by
            assert newer is not None and newer.id > run.id and newer.name == run.name, run
            assert (run.result, run.status) == ("fail", "aborted")

    @invariant()
    def parallel_sequences_never_hold_or_wait(self):
        parallel = SE.objects.filter(queue_policy=SE.PARALLEL)
        assert not parallel.filter(holds_lane=True).exists()
        for run in parallel.filter(state=SE.WAITING):
            assert self.frozen_now(run.service), "a parallel sequence waits in a lane that is not frozen"

    @invariant()
    def follow_ups_of_the_holder_never_wait(self):
        """A rollback chained from the lane's holder (same context) starts before the backlog, at once."""
        for run in SE.objects.filter(name="rollback", rerun_of__isnull=True):  # a re-run queues like any trigger
            assert run.started_at is not None or self.born_frozen(run), (run.state, run.context)

    @invariant()
    def an_approval_passes_only_with_enough_distinct_approvers(self):
        for task in TaskExecution.objects.filter(name="approval"):
            people = [entry["by"] for entry in task.approvals]
            assert len(people) == len(set(people)), people
            if task.state == TaskExecution.FINISHED and task.finished_by in ("p1", "p2", "p3"):
                assert task.result == "fail" or len(people) >= 2, (task.result, people)

    @invariant()
    def attempts_of_a_task_never_overlap(self):
        """A retry's attempt is made only once the one before it ended: one unfinished attempt at most."""
        attempts: dict[tuple[int, int], list] = {}
        for run_id, index, attempt, state in TaskExecution.objects.order_by("id").values_list(
                "sequence_execution_id", "index", "attempt", "state"):
            attempts.setdefault((run_id, index), []).append((attempt, state))
        for key, found in attempts.items():
            assert [a for a, _ in found] == list(range(1, len(found) + 1)), (key, found)
            assert all(state not in TaskExecution.UNFINISHED for _, state in found[:-1]), (key, found)

    @invariant()
    def a_re_run_follows_an_ended_run_of_its_sequence(self):
        for run in SE.objects.filter(rerun_of__isnull=False).select_related("rerun_of"):
            first = run.rerun_of
            assert (first.stage, first.name, first.service) == (run.stage, run.name, run.service)
            assert first.id < run.id and first.state in SE.TERMINAL


@pytest.mark.django_db
def test_random_interleavings_keep_the_lane_rules():
    run_state_machine_as_test(
        LaneMachine,
        settings=settings(max_examples=40, stateful_step_count=40, report_multiple_bugs=False, deadline=None,
                          suppress_health_check=list(HealthCheck)),
    )
