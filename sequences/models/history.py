"""The event log (every event in or out) and the audit trail (every command, who gave it and what it
changed)."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from sequences.models.runs import SequenceExecution, TaskExecution


class Event(models.Model):
    """The event log: every event in or out, in order of arrival (`id`)."""

    APPLIED = "applied"
    REJECTED = "rejected"  # stored, answered 409, changed nothing
    EMITTED = "emitted"
    OUTCOMES = [(APPLIED, "applied"), (REJECTED, "rejected"), (EMITTED, "emitted by Bosun")]

    event_id = models.CharField(max_length=100)  # looked up through unique_event_id_type, which starts with it
    type = models.CharField(max_length=200)
    source = models.CharField(max_length=200, blank=True)
    context = models.CharField(max_length=36, blank=True)
    triggered_id = models.CharField(max_length=100, blank=True)
    project = models.CharField(max_length=100, blank=True)
    stage = models.CharField(max_length=100, blank=True)
    service = models.CharField(max_length=100, blank=True)
    time = models.DateTimeField(default=timezone.now)
    received_at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=10, choices=OUTCOMES, default=APPLIED)
    note = models.TextField(blank=True)
    sent_by = models.CharField(max_length=200, blank=True, default="",
                               help_text="Who sent a sequence's trigger: the user and token, or the Bridge's user")
    payload = models.JSONField(help_text="The whole CloudEvent")

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["context", "id"], name="event_context"),
            models.Index(fields=["triggered_id"], name="event_triggered_id"),
            models.Index(fields=["project", "type", "id"], name="event_project_type"),
            # project views: the last event of each stage (Keptn's lastEventContext)
            models.Index(fields=["project", "stage", "id"], name="event_project_stage"),
        ]
        constraints = [
            # A repeated (id, type) is a duplicate. The same id with another type is a new event: Keptn's
            # documented fix for a stuck task re-sends a task's .started body as .finished, id unchanged.
            models.UniqueConstraint(fields=["event_id", "type"], name="unique_event_id_type"),
        ]

    def __str__(self):
        return f"{self.type} {self.event_id}"


class ControlAction(models.Model):
    """The audit trail: every control command, who gave it, from where, why, and what it changed."""

    SOURCES = [(s, s) for s in ("bridge", "api", "cli", "admin", "engine")]

    sequence_execution = models.ForeignKey(
        SequenceExecution, on_delete=models.CASCADE, related_name="control_actions", null=True, blank=True
    )
    task_execution = models.ForeignKey(TaskExecution, on_delete=models.SET_NULL, null=True, blank=True)
    project = models.CharField(max_length=100)
    context = models.CharField(max_length=36)
    command = models.CharField(max_length=40)
    actor = models.CharField(max_length=150)
    source = models.CharField(max_length=10, choices=SOURCES)
    reason = models.TextField(blank=True)
    state_before = models.CharField(max_length=24, blank=True)
    state_after = models.CharField(max_length=24, blank=True)
    idempotency_key = models.CharField(max_length=200, blank=True)
    request_digest = models.CharField(max_length=64, blank=True,
                                      help_text="What was asked (command, target, options), to spot a reused key")
    response = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["context", "id"], name="control_context")]
        constraints = [
            # An Idempotency-Key belongs to whoever sent it: two users' keys never collide.
            models.UniqueConstraint(
                fields=["actor", "idempotency_key"], condition=~Q(idempotency_key=""), name="unique_idempotency_key"
            )
        ]

    def __str__(self):
        return f"{self.command} by {self.actor} ({self.source})"
