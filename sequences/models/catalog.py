"""Projects (their shipyard and jobs, parsed and kept per process), their services, and lanes: the
(project, stage, service) rows a lane's lock is taken on."""

from django.db import models
from django.utils import timezone

from sequences.rules import shipyard as shipyard_module
from sequences.rules import windows


class Project(models.Model):
    name = models.CharField(max_length=100, unique=True)
    shipyard = models.TextField(help_text="The shipyard as YAML (spec.keptn.sh/0.2.x)")
    jobs = models.TextField(blank=True, help_text="Job definitions as YAML: which command runs which task")
    # "" while it has no freeze window (a trigger into it asks nothing more); else a new value at every change
    # of its windows, so each process knows when the windows it keeps in memory are stale.
    freeze_key = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("operate_sequences", "Can trigger and control sequences"),
            ("manage_projects", "Can create, change and delete projects"),
            # Jobs are commands that executors run on their hosts: defining them is running code there.
            ("define_jobs", "Can define jobs (runs commands on executor hosts)"),
            ("pass_freezes", "Can let a sequence through a freeze window"),
        ]

    def __str__(self):
        return self.name

    def parsed_shipyard(self) -> shipyard_module.Shipyard:
        """The parsed shipyard, cached per process by its text (parsing is the slow part)."""
        cached = _SHIPYARDS.get(self.shipyard)
        if cached is None:
            cached = shipyard_module.parse(self.shipyard)
            if len(_SHIPYARDS) > 256:
                _SHIPYARDS.clear()
            _SHIPYARDS[self.shipyard] = cached
        return cached

    @property
    def has_freezes(self) -> bool:
        return bool(self.freeze_key)

    def freeze(self, stage: str, service: str, now=None) -> windows.Freeze | None:
        """The lane's freeze now (sequences/rules/windows.py), or None. No query for a project without
        windows, nor while the process's copy of its windows is current (its freeze_key). Lanes asked about
        without `now` within a second of the first are asked about at that moment (a page shows every lane
        as of one moment)."""
        if not self.freeze_key:
            return None
        if now is None:
            now = timezone.now()
            first = getattr(self, "_freeze_moment", None)
            if first is not None and (now - first).total_seconds() < 1:
                now = first
            else:
                self._freeze_moment = now
        return self.calendar().freeze(stage, service, now)

    def calendar(self) -> windows.Calendar:
        """Its windows, kept per process until they change."""
        cached = _CALENDARS.get(self.pk)
        if cached is None or cached[0] != self.freeze_key:
            if len(_CALENDARS) > 256:
                _CALENDARS.clear()
            cached = _CALENDARS[self.pk] = (self.freeze_key, windows.Calendar(
                w.rule() for w in self.freeze_windows.all()))
        return cached[1]


_SHIPYARDS: dict[str, shipyard_module.Shipyard] = {}
_CALENDARS: dict[int, tuple[str, windows.Calendar]] = {}


class Service(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="services")
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_service_per_project")]

    def __str__(self):
        return f"{self.project.name}/{self.name}"


class Lane(models.Model):
    """(project, stage, service). Its row is the lock taken when a lane is taken or released."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="lanes")
    stage = models.CharField(max_length=100)
    service = models.CharField(max_length=100)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "stage", "service"], name="unique_lane")
        ]

    def __str__(self):
        return f"{self.project.name}/{self.stage}/{self.service}"
