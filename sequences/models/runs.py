"""Sequence and task executions, and a task's log: what runs, and in which state it is.

No module outside sequences.transitions assigns a `state` (sequences/transitions/moves.py does, as sequences/rules/machine.py allows).
"""

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from sequences.models.catalog import Project
from sequences.rules.machine import Run, Task, failed_at_its_end, run_commands
from sequences.rules.timers import TIMERS


class SequenceQuerySet(models.QuerySet):
    def in_lane(self, project, stage, service):
        return self.filter(project=project, stage=stage, service=service)

    def holding(self):
        """Sequences that hold their lane: started, waitingForApproval, aborting, paused after starting."""
        return self.filter(holds_lane=True)

    def waiting(self):
        """The queue of a lane, oldest trigger first (paused waiting sequences keep their place)."""
        return self.filter(Q(state=SequenceExecution.WAITING) | Q(
            state=SequenceExecution.PAUSED, state_before_pause=SequenceExecution.WAITING
        )).order_by("-queue_priority", "id")

    def active(self):
        return self.exclude(state__in=SequenceExecution.TERMINAL)


class SequenceExecution(models.Model):
    # The states, and which move is allowed from where: sequences/rules/machine.py
    TRIGGERED, WAITING, STARTED, PAUSED = Run.TRIGGERED, Run.WAITING, Run.STARTED, Run.PAUSED
    WAITING_FOR_APPROVAL, ABORTING = Run.WAITING_FOR_APPROVAL, Run.ABORTING
    FINISHED, ABORTED, TIMED_OUT, SUPERSEDED = Run.FINISHED, Run.ABORTED, Run.TIMED_OUT, Run.SUPERSEDED
    STATES = Run.CHOICES
    TERMINAL = Run.TERMINAL
    ACTIVE = Run.ACTIVE
    # Queue policies (the shipyard's `queue` on a sequence): see sequences/transitions/policies.py
    FIFO, NEWEST, CANCEL_IN_PROGRESS, PARALLEL = "fifo", "newest", "cancel-in-progress", "parallel"
    QUEUE_POLICIES = [(p, p) for p in (FIFO, NEWEST, CANCEL_IN_PROGRESS, PARALLEL)]

    execution_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # No index of its own: every index below starts with the project (one index fewer to write per trigger)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="sequence_executions",
                                db_index=False)
    stage = models.CharField(max_length=100)
    service = models.CharField(max_length=100)
    name = models.CharField(max_length=100, help_text="The sequence's name in the shipyard")
    context = models.CharField(max_length=36, help_text="shkeptncontext")
    triggered_id = models.CharField(max_length=100, help_text="Id of the sequence's .triggered event")
    gitcommitid = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=24, choices=STATES, default=TRIGGERED)
    state_before_pause = models.CharField(max_length=24, blank=True)
    holds_lane = models.BooleanField(default=False)
    queue_policy = models.CharField(max_length=20, choices=QUEUE_POLICIES, default=FIFO,
                                    help_text="The lane's queue policy for this sequence, as the shipyard said")
    queue_priority = models.SmallIntegerField(
        default=0, help_text="Waiting sequences start by priority (higher first), then by trigger order")
    superseded_by = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True,
                                      related_name="superseded", help_text="The newer execution that took its turn")
    root = models.BooleanField(default=False, help_text="The first sequence of its context (one list row each)")
    rerun_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, db_index=False,
                                 related_name="reruns", help_text="The ended execution this one runs again")
    frozen_by = models.CharField(max_length=100, blank=True,
                                 help_text="The freeze window it holds under at a task boundary (paused)")
    passes_freeze = models.BooleanField(default=False, help_text="An operator let it through freeze windows")
    result = models.CharField(max_length=10, blank=True)
    status = models.CharField(max_length=10, blank=True)
    message = models.TextField(blank=True)
    input_data = models.JSONField(default=dict)
    tasks = models.JSONField(default=list, help_text="The sequence's tasks as the shipyard had them")
    triggered_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SequenceQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            # lanes.py: the holder and the queue of a lane, in the order it starts (next_in_line reads the
            # first entry, never sorting the queue: a release costs the same with 10,000 waiting)
            models.Index(fields=["project", "stage", "service", "state", "-queue_priority", "id"],
                         name="seq_lane_queue"),
            # API and Bridge lists: newest first per project, filtered by state
            models.Index(fields=["project", "state", "-id"], name="seq_project_state"),
            # deep links and chaining: everything of one context
            models.Index(fields=["context", "project"], name="seq_context"),
            # the Bridge's sequence list: one row per context, newest first, keyset paging on id
            models.Index(fields=["project", "root", "-id"], name="seq_list"),
            # ... and filtered by service: the walk then visits that service's contexts only
            models.Index(fields=["project", "service", "root", "-id"], name="seq_list_service"),
            # the list's state filter for one service: does anything match at all?
            models.Index(fields=["project", "service", "state"], name="seq_service_state"),
            # the Bridge's environment and project cards: who holds lanes, what failed lately
            models.Index(fields=["project", "stage", "service"], condition=Q(holds_lane=True), name="seq_holders"),
            models.Index(fields=["project", "ended_at"], name="seq_project_ended"),
            # "re-run as": only re-runs are in it, so a trigger writes nothing to it
            models.Index(fields=["rerun_of"], condition=Q(rerun_of__isnull=False), name="seq_reruns"),
        ]

    def __str__(self):
        return f"{self.project.name}/{self.stage}/{self.service} {self.name} ({self.context[:8]})"

    @property
    def lane_key(self):
        return (self.project_id, self.stage, self.service)

    @property
    def is_terminal(self):
        return self.state in self.TERMINAL

    def commands(self) -> list[str]:
        """The commands sequences/rules/machine.py allows now. On an aborted run, kill applies while a task
        it abandoned may still have processes (one query, only then)."""
        killable = self.state == self.ABORTED and self.task_executions.killable_abandoned().exists()
        return run_commands(self.state, abandoned_with_executor=killable, refused=not self.tasks,
                            frozen=self.frozen())

    def frozen(self) -> bool:
        """Whether it holds under a freeze window, or waits in a frozen lane without being let through."""
        if self.state == self.PAUSED:
            return bool(self.frozen_by)
        return (self.state == self.WAITING and not self.passes_freeze
                and self.project.freeze(self.stage, self.service) is not None)

    def retry_point(self, tasks=None):
        """The task execution it failed or timed out at (its last), which a retry runs again; or None. None too
        once it was re-run (the re-run is where it goes on). `tasks`: its task executions in order, when the
        caller has them (else one query more)."""
        if not self.tasks or not failed_at_its_end(self.state, self.result) or self.reruns.exists():
            return None
        if tasks is not None:
            return tasks[-1] if tasks else None
        return self.task_executions.order_by("-id").first()

    def task_spec(self, index: int) -> dict | None:
        return self.tasks[index] if 0 <= index < len(self.tasks) else None


class TaskQuerySet(models.QuerySet):
    def open(self):
        return self.filter(state__in=TaskExecution.OPEN)

    def killable_abandoned(self):
        """Tasks a force abort abandoned while an executor ran them, with no kill asked yet: the kill that
        sequences/rules/machine.py allows on an aborted sequence is for these."""
        return self.filter(state=TaskExecution.ABANDONED, kill_requested_at__isnull=True).exclude(executors={})


class TaskExecution(models.Model):
    # The states, and which move is allowed from where: sequences/rules/machine.py
    SCHEDULED, TRIGGERED, STARTED, FINISHED = Task.SCHEDULED, Task.TRIGGERED, Task.STARTED, Task.FINISHED
    ABANDONED, KILLING, KILLED, TIMED_OUT = Task.ABANDONED, Task.KILLING, Task.KILLED, Task.TIMED_OUT
    STATES = Task.CHOICES
    OPEN = Task.OPEN
    UNFINISHED = Task.UNFINISHED

    sequence_execution = models.ForeignKey(SequenceExecution, on_delete=models.CASCADE, related_name="task_executions")
    index = models.PositiveIntegerField()
    attempt = models.PositiveSmallIntegerField(default=1, help_text="1, then 2, 3... as its retry policy tries "
                                                                     "it again")
    name = models.CharField(max_length=100)
    triggered_id = models.CharField(max_length=100, unique=True, help_text="Id of the task's .triggered event")
    state = models.CharField(max_length=16, choices=STATES, default=TRIGGERED)
    result = models.CharField(max_length=10, blank=True)
    status = models.CharField(max_length=10, blank=True)
    message = models.TextField(blank=True)
    properties = models.JSONField(null=True, blank=True)
    executors = models.JSONField(default=dict, help_text="source -> {started, finished, result, status, message}")
    finished_data = models.JSONField(default=dict, help_text="The executors' .finished data, merged")
    finished_by = models.CharField(max_length=150, blank=True, help_text="Set when an operator finished it")
    approvals = models.JSONField(default=list, blank=True,
                                 help_text="An approval task's approvals so far: [{by, at, reason}]")
    due_at = models.DateTimeField(null=True, blank=True, help_text="When a delayed task is triggered")
    triggered_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_heard_at = models.DateTimeField(null=True, blank=True)
    start_deadline = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    heartbeat_deadline = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    kill_requested_at = models.DateTimeField(null=True, blank=True)
    suspend_requested = models.BooleanField(default=False)
    claimed_by = models.CharField(max_length=200, blank=True, help_text="The job executor that runs it")
    claimed_by_user = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+", help_text="Whose token claimed it: only they report "
                                                                    "its log and facts")
    heartbeat_timeout = models.FloatField(null=True, blank=True, help_text="Seconds; set when an executor claims it")
    kill_grace = models.FloatField(null=True, blank=True, help_text="Seconds from SIGTERM to SIGKILL")
    facts = models.JSONField(default=dict, blank=True,
                             help_text="What its executor reported: machine, exit code, computation time, output files")
    engine_failures = models.PositiveIntegerField(default=0, help_text="Times the engine failed to handle its timer")
    engine_error = models.TextField(blank=True, help_text="The engine's last error on this task, if any")

    objects = TaskQuerySet.as_manager()

    class Meta:
        ordering = ["sequence_execution_id", "index"]
        indexes = [
            # engine: the next moment of each kind of timer (sequences/rules/timers.py). Partial, so that a
            # task's change of state writes only the entries of the timers it leaves and enters.
            *[models.Index(fields=[t.field], condition=Q(state=t.state), name=t.index) for t in TIMERS],
            # /event/triggered/{eventType}: open tasks by name
            models.Index(fields=["name", "state"], name="task_name_state"),
        ]

    def __str__(self):
        return f"{self.name} ({self.triggered_id[:8]})"

    @property
    def is_open(self):
        return self.state in self.OPEN


class TaskLog(models.Model):
    """The output of a task's job, bounded: its head and its tail are kept, and how much was cut between
    them is counted."""

    HEAD_CHARS = 16 * 1024

    task = models.OneToOneField(TaskExecution, on_delete=models.CASCADE, related_name="log")
    text = models.TextField(blank=True)
    total_bytes = models.BigIntegerField(default=0)
    cut_bytes = models.BigIntegerField(default=0, help_text="Bytes dropped after the head to keep the tail")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"log of {self.task}"

    def shown(self) -> str:
        """The kept text, with a note where output was cut."""
        if not self.cut_bytes:
            return self.text
        return (self.text[:self.HEAD_CHARS] + f"\n[... {self.cut_bytes} bytes of this log were cut here; "
                "the last ones follow ...]\n" + self.text[self.HEAD_CHARS:])
