"""Freeze windows: while one is on, a project's lanes (or some stages and services of it) start nothing; what
a window means is decided in sequences/rules/windows.py, which `rule()` hands it to."""

from django.db import models
from django.db.models import Q

from sequences.rules import windows
from sequences.rules.machine import Run


class FreezeWindow(models.Model):
    project = models.ForeignKey("sequences.Project", on_delete=models.CASCADE, related_name="freeze_windows")
    name = models.CharField(max_length=windows.MAX_NAME)
    reason = models.TextField(blank=True)
    stages = models.JSONField(default=list, blank=True, help_text="The stages it covers; empty: every stage")
    services = models.JSONField(default=list, blank=True, help_text="The services it covers; empty: every service")
    starts_at = models.DateTimeField(null=True, blank=True, help_text="A one-off window's start")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="A one-off window's end")
    cron = models.CharField(max_length=windows.MAX_CRON, blank=True,
                            help_text="A recurring window's starts, as a cron expression in its time zone")
    duration = models.FloatField(default=0, help_text="A recurring window's length in seconds")
    time_zone = models.CharField(max_length=64, default="UTC")
    running = models.CharField(max_length=10, default=windows.HOLD,
                               choices=[(windows.HOLD, "hold at the next task"), (windows.FINISH, "run to the end")])
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The engine's timer: the end of its current or next occurrence (waiting work starts then); none when over.
    next_end = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_freeze_per_project")]
        indexes = [models.Index(fields=["next_end"], condition=Q(next_end__isnull=False), name="freeze_next_end")]

    def __str__(self):
        return f"{self.project.name}: {self.name}"

    def rule(self) -> windows.Window:
        return windows.Window(name=self.name, stages=tuple(self.stages or ()), services=tuple(self.services or ()),
                              starts_at=self.starts_at, ends_at=self.ends_at, cron=self.cron,
                              duration=self.duration, time_zone=self.time_zone, running=self.running,
                              reason=self.reason, created_by=self.created_by, created_at=self.created_at)


HELD = Q(state=Run.PAUSED) & ~Q(frozen_by="")  # sequences that hold at a task boundary under a window
