"""Creating, listing and deleting a project's freeze windows (the API, the CLI through it, admin and the Bridge
use these). A window's fields are checked by sequences/rules/windows.py against the project's stages and
services; creating and deleting are audited, and a deleted window's held and waiting work goes on at once."""

import uuid

from django.db import IntegrityError
from django.utils import timezone

from sequences.configuration import ProjectError
from sequences.models import FreezeWindow, Project
from sequences.rules import windows
from sequences.rules.durations import format_duration
from sequences.store.db import write_transaction
from sequences.transitions import holds
from sequences.transitions.moves import audit


class WindowFieldError(ProjectError):
    """400 naming the field."""

    def __init__(self, field: str, message: str):
        super().__init__(400, f"{field}: {message}")
        self.field = field


def _iso(moment) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def window_json(window: windows.Window, now=None) -> dict:
    """A window (its rule: FreezeWindow.rule()) as the API, the CLI and the Bridge show it: its fields, whether
    it is on and until when, and its next occurrence."""
    now = now or timezone.now()
    on = window.on_at(now)
    upcoming = window.next_after(now)
    return {
        "name": window.name, "reason": window.reason, "stages": list(window.stages), "services": list(window.services),
        "start": _iso(window.starts_at), "end": _iso(window.ends_at), "cron": window.cron or None,
        "duration": format_duration(window.duration) if window.cron else None, "timeZone": window.time_zone,
        "running": window.running, "createdBy": window.created_by, "createdAt": _iso(window.created_at),
        "active": on is not None,
        "activeUntil": _iso(on[1]) if on else None,
        "nextStart": _iso(upcoming[0]) if upcoming else None, "nextEnd": _iso(upcoming[1]) if upcoming else None,
        "over": on is None and upcoming is None,
    }


def windows_of(project: Project, now=None) -> list[dict]:
    """The project's windows: those on now first, then the upcoming ones by start, then those that are over."""
    now = now or timezone.now()
    found = [window_json(w, now) for w in project.calendar().windows] if project.has_freezes else []
    far = "9999"
    return sorted(found, key=lambda w: (not w["active"], w["over"], w["activeUntil"] or w["nextStart"] or far,
                                        w["name"]))


def checked(project: Project, data) -> windows.Window:
    stages = project.parsed_shipyard().stage_names
    services = list(project.services.values_list("name", flat=True))
    try:
        return windows.clean(data, stages, services)
    except windows.WindowError as exc:
        raise WindowFieldError(exc.field, exc.message) from None


def apply(window: FreezeWindow, rule: windows.Window):
    """Put a checked window's fields on the stored one."""
    for field in ("name", "reason", "starts_at", "ends_at", "cron", "duration", "time_zone", "running"):
        setattr(window, field, getattr(rule, field))
    window.stages, window.services = list(rule.stages), list(rule.services)


def create_window(project: Project, data, *, actor: str, source: str) -> FreezeWindow:
    window = FreezeWindow(project=project, created_by=actor)
    apply(window, checked(project, data))
    save_window(window, actor=actor, source=source)
    return window


def save_window(window: FreezeWindow, *, actor: str, source: str):
    """Write a checked window (new or changed) with its timer, give its project a new `freeze_key`, and audit
    it. Work a changed window no longer freezes goes on at once."""
    now = timezone.now()
    created = window.pk is None
    window.next_end = window.rule().next_change(now)
    try:
        with write_transaction():
            window.save()
            Project.objects.filter(pk=window.project_id).update(freeze_key=uuid.uuid4().hex)
            holds.reconsider(window.project, now)
            audit(None, "freeze:create" if created else "freeze:change", actor=actor, source=source,
                  reason=window.reason, project=window.project.name,
                  response={"code": 201 if created else 200, "body": window_json(window.rule(), now)})
    except IntegrityError:
        raise ProjectError(409, f"Project '{window.project.name}' already has a freeze window '{window.name}'; "
                                "delete it first, or give this one another name.") from None


def delete_window(project: Project, name: str, *, actor: str, source: str, reason: str = ""):
    """Delete a window; what it held or kept waiting goes on now (unless another window still freezes it)."""
    with write_transaction():
        window = project.freeze_windows.filter(name=name).first()
        if window is None:
            raise ProjectError(404, f"Project '{project.name}' has no freeze window '{name}'.")
        before = window_json(window.rule())
        window.delete()
        forget_deleted(project)
        audit(None, "freeze:delete", actor=actor, source=source, reason=reason, project=project.name,
              response={"code": 200, "body": before})


def forget_deleted(project: Project):
    """After a window was deleted (inside the transaction): the project's flag, and its lanes reconsidered."""
    Project.objects.filter(pk=project.pk).update(freeze_key=uuid.uuid4().hex if project.freeze_windows.exists() else "")
    holds.reconsider(project)
