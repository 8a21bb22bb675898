"""Creating and changing projects and services (the API, `up`'s demo project and admin use these)."""

import base64
import binascii
import difflib

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import Max, Q

from sequences.models import Event, Project, Service, TaskExecution
from sequences.rules import jobs as jobs_module
from sequences.rules import shipyard as shipyard_module
from sequences.rules.shipyard import NAME_RE, ShipyardError
from sequences.store.db import write_transaction
from sequences.store.signals import jobs_changed


class ProjectError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def decode_shipyard(text: str) -> str:
    """Keptn sends the shipyard base64-encoded; people send YAML. Accept both."""
    if not isinstance(text, str) or not text.strip():
        raise ProjectError(400, "shipyard is required: the YAML text, or base64-encoded YAML as Keptn sends it.")
    stripped = text.strip()
    if "\n" not in stripped and ":" not in stripped:
        try:
            return base64.b64decode(stripped, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):  # not base64 (or not ASCII): read it as YAML
            pass
    return text


def check_name(name, what="project") -> str:
    if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > 100:
        raise ProjectError(400, f"{what} name {name!r} is not valid: use lowercase letters, digits and hyphens, "
                                "starting with a letter (at most 100 characters).")
    return name


def validated_shipyard(text: str) -> str:
    text = decode_shipyard(text)
    try:
        shipyard = shipyard_module.parse(text)
    except ShipyardError as exc:
        raise ProjectError(400, f"The shipyard is not valid: {exc}") from None
    _check_approval_groups(shipyard)
    return text


def _check_approval_groups(shipyard):
    """An approval rule that names a group needs that group, with as many active members as approvals."""
    for stage in shipyard.stages:
        for sequence in stage.sequences:
            for task in sequence.tasks:
                rule = task.approval or {}
                if not rule.get("group"):
                    continue
                people = get_user_model().objects.filter(groups__name=rule["group"], is_active=True)
                members = people.count()
                # approving is operating a sequence: only members who may do that count
                may = Q(is_superuser=True) | Q(user_permissions__codename="operate_sequences") | Q(
                    groups__permissions__codename="operate_sequences")
                operators = get_user_model().objects.filter(may, id__in=people.values("id")).distinct().count()
                if operators < rule["required"]:
                    has = (f"has {members} active member{'s' if members != 1 else ''}"
                           if Group.objects.filter(name=rule["group"]).exists() else "does not exist")
                    if members >= rule["required"]:
                        has += (f", and only {operators} of them may operate sequences (approving needs that "
                                "permission)")
                    raise ProjectError(400, f"The shipyard is not valid: {task.where}.approval.required: "
                                            f"{rule['required']} approvals from group '{rule['group']}' can never "
                                            f"be given: the group {has}.")


def warnings(project: Project) -> list[str]:
    """What a project accepts but will not do what its author likely meant: the shipyard's warnings (keys
    Bosun does not read, triggers that never fire) and jobs for a task no sequence of the shipyard has."""
    shipyard = project.parsed_shipyard()
    found = list(shipyard.warnings)
    tasks = sorted({task.name for stage in shipyard.stages for seq in stage.sequences for task in seq.tasks})
    try:
        jobs = jobs_module.parse(project.jobs or "")
    except jobs_module.JobsError:  # stored before a rule got stricter: it is refused when it is next changed
        jobs = []
    for index, job in enumerate(jobs):
        if job.task not in tasks:
            close = difflib.get_close_matches(job.task, tasks, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (its tasks are {', '.join(tasks)})"
            found.append(f"jobs[{index}] ({job.name}): no sequence of the shipyard has a task '{job.task}'{hint}, "
                         "so this job never runs")
    return found


def validated_jobs(text: str | None) -> str:
    """Job definitions as YAML (an empty text is none), or ProjectError(400) naming the line and field."""
    text = text or ""
    try:
        jobs_module.parse(text)
    except jobs_module.JobsError as exc:
        raise ProjectError(400, f"The job definitions are not valid: {exc}") from None
    return text


def create_project(name: str, shipyard: str, services=(), jobs: str = "") -> Project:
    check_name(name)
    text = validated_shipyard(shipyard)
    jobs = validated_jobs(jobs)
    for service in services:
        check_name(service, "service")
    with write_transaction():
        if Project.objects.filter(name=name).exists():
            raise ProjectError(409, f"Project '{name}' already exists.")
        project = Project.objects.create(name=name, shipyard=text, jobs=jobs)
        for service in services:
            Service.objects.create(project=project, name=service)
    return project


def update_shipyard(project: Project, shipyard: str) -> Project:
    """Running sequences keep the tasks they started with; new ones use the new shipyard."""
    text = validated_shipyard(shipyard)
    with write_transaction():
        project.shipyard = text
        project.save(update_fields=["shipyard", "updated_at"])
    return project


def update_jobs(project: Project, jobs: str) -> Project:
    """Tasks triggered from now on run the new jobs; running ones go on with theirs."""
    text = validated_jobs(jobs)
    with write_transaction():
        project.jobs = text
        project.save(update_fields=["jobs", "updated_at"])
        name = project.name
        transaction.on_commit(lambda: jobs_changed.send(sender=None, project=name))
    return project


def delete_project(project: Project):
    """The project and all it holds: its sequences, their tasks and logs, its webhooks and its event log (a new
    project of the same name starts with none of them). The audit trail of control commands is kept."""
    with write_transaction():
        Event.objects.filter(project=project.name).delete()
        project.delete()


def create_service(project: Project, name: str) -> Service:
    check_name(name, "service")
    try:
        with write_transaction():
            return Service.objects.create(project=project, name=name)
    except IntegrityError:
        raise ProjectError(409, f"Service '{name}' already exists in project '{project.name}'.") from None


def delete_service(project: Project, name: str):
    with write_transaction():
        deleted, _ = Service.objects.filter(project=project, name=name).delete()
    if not deleted:
        raise ProjectError(404, f"Project '{project.name}' has no service '{name}'.")


def deployed_images(project: Project) -> dict[tuple[str, str], str]:
    """(stage, service) -> the image its last deployment put there. As Keptn does: set when a `deployment` task
    finishes with pass or warning (not when its sequence ends), from the sequence's
    configurationChange.values.image."""
    stage, service = "sequence_execution__stage", "sequence_execution__service"
    last = (TaskExecution.objects.filter(sequence_execution__project=project, name="deployment",
                                         state=TaskExecution.FINISHED, result__in=("pass", "warning"))
            .values(stage, service).annotate(last=Max("id")).values_list("last", flat=True))
    images = {}
    for row in TaskExecution.objects.filter(id__in=list(last)).values(stage, service, "sequence_execution__input_data"):
        data = row["sequence_execution__input_data"] or {}
        image = ((data.get("configurationChange") or {}).get("values") or {}).get("image")
        if isinstance(image, str):
            images[(row[stage], row[service])] = image
    return images
