"""The receivers of Bosun's events: Keptn's uniform integrations (execution-plane services that register
and subscribe) and webhooks with their deliveries (the outbox)."""

from django.db import models
from django.utils import timezone

from sequences.rules.cloudevents import event_matches, filter_matches, now_iso


class Integration(models.Model):
    """A registered execution-plane service (Keptn's models.Integration)."""

    integration_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    owner = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                              help_text="The user whose token registered it: only they change it")
    metadata = models.JSONField(default=dict, help_text="hostname, versions, location, kubernetesmetadata")
    subscriptions = models.JSONField(default=list, help_text="[{id, event, filter: {projects, stages, services}}]")
    registered_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "sequences"
        ordering = ["name", "id"]

    def __str__(self):
        return f"{self.name} ({self.metadata.get('hostname') or 'unknown host'})"

    @property
    def hostname(self) -> str:
        return str(self.metadata.get("hostname") or "")

    def as_keptn(self) -> dict:
        metadata = {**self.metadata, "lastseen": self.last_seen.isoformat().replace("+00:00", "Z")}
        return {"id": self.integration_id, "name": self.name, "metadata": metadata,
                "subscriptions": self.subscriptions}

    def subscribed_to(self, event_type: str) -> list[dict]:
        """Subscriptions whose event matches (Keptn's wildcards: `sh.keptn.event.>` or a `*` part)."""
        return [s for s in self.subscriptions if event_matches(s.get("event", ""), event_type)]

    def offers(self, event_type: str, project: str, stage: str, service: str) -> bool:
        """Whether a task event of this type and scope goes to this integration."""
        return any(filter_matches(s.get("filter") or {}, project, stage, service)
                   for s in self.subscribed_to(event_type))

    def concerns(self, project: str) -> bool:
        """Whether any subscription can match an event of `project` (an empty filter matches every project)."""
        return any(not (s.get("filter") or {}).get("projects") or project in s["filter"]["projects"]
                   for s in self.subscriptions)


class Webhook(models.Model):
    project = models.ForeignKey("sequences.Project", on_delete=models.CASCADE, related_name="webhooks")
    url = models.CharField("URL", max_length=500, help_text="Where the events are POSTed (http or https)")
    events = models.JSONField(default=list, blank=True,
                              help_text="Event types, Keptn's wildcards allowed, e.g. sh.keptn.event.*.finished; "
                                        "empty: every event of the project")
    secret = models.CharField(max_length=200, help_text="Signs each delivery (HMAC-SHA256)")
    active = models.BooleanField(default=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "sequences"
        ordering = ["project__name", "id"]

    def __str__(self):
        return f"{self.project.name} → {self.url}"

    def as_json(self, secret: bool = False) -> dict:
        body = {"id": self.id, "project": self.project.name, "url": self.url, "events": self.events,
                "active": self.active, "createdBy": self.created_by,
                "createdAt": self.created_at.isoformat().replace("+00:00", "Z")}
        if secret:
            body["secret"] = self.secret
        return body


class Delivery(models.Model):
    PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
    STATES = [(PENDING, "pending"), (DELIVERED, "delivered"), (FAILED, "failed")]

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey("sequences.Event", on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=10, choices=STATES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status = models.PositiveIntegerField(null=True, blank=True, help_text="The receiver's HTTP status")
    last_error = models.TextField(blank=True)
    last_duration_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "sequences"
        ordering = ["-id"]
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        indexes = [
            # the sender's claim: due pending deliveries, oldest first
            models.Index(fields=["state", "next_attempt_at"], name="delivery_due"),
        ]

    def __str__(self):
        return f"delivery {self.id} of event {self.event_id} ({self.state})"

    def as_json(self) -> dict:
        iso = lambda t: t.isoformat().replace("+00:00", "Z") if t else None  # noqa: E731
        return {"id": self.id, "webhookId": self.webhook_id, "eventId": self.event.event_id,
                "eventType": self.event.type, "state": self.state, "attempts": self.attempts,
                "nextAttemptAt": iso(self.next_attempt_at) if self.state == self.PENDING else None,
                "lastStatus": self.last_status, "lastError": self.last_error,
                "lastDurationMs": self.last_duration_ms, "createdAt": iso(self.created_at),
                "deliveredAt": iso(self.delivered_at)}


class IntegrationLog(models.Model):
    """An error an integration reported (Keptn's models.LogEntry): its go-sdk forwards each `.finished` with
    status errored and each `sh.keptn.log.error` here. Bounded per integration (sequences/integration_logs.py)."""

    integration_id = models.CharField(max_length=200, help_text="The integration that reported it")
    message = models.TextField(blank=True)
    context = models.CharField(max_length=100, blank=True, help_text="shkeptncontext")
    task = models.CharField(max_length=200, blank=True)
    triggered_id = models.CharField(max_length=100, blank=True, help_text="The task's .triggered event id")
    gitcommitid = models.CharField(max_length=100, blank=True)
    time = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "sequences"
        ordering = ["-time", "-id"]
        indexes = [
            models.Index(fields=["integration_id", "time"], name="log_of_integration"),
            models.Index(fields=["time"], name="log_time"),
            models.Index(fields=["triggered_id"], name="log_of_task"),
        ]

    def __str__(self):
        return f"{self.integration_id}: {self.message[:60]}"

    def as_keptn(self) -> dict:
        return {"integrationid": self.integration_id, "message": self.message, "shkeptncontext": self.context,
                "task": self.task, "triggeredid": self.triggered_id, "gitcommitid": self.gitcommitid,
                "time": now_iso(self.time)}
