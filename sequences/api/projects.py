"""Projects and services: create, read, update (the shipyard), delete."""

from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from sequences import configuration as projects
from sequences.api.auth import DEFINE_JOBS, MANAGE, require
from sequences.api.params import project_or_404
from sequences.api.schemas import JOBS_ANSWER, MESSAGE, PROJECT, PROJECTS, SERVICE, answers
from sequences.models import Event, Project
from sequences.rules import jobs as jobs_module
from sequences.rules.cloudevents import now_iso

NAME_PATTERN = r"^[a-z][a-z0-9-]*$"
MAX_SHIPYARD = 256 * 1024  # characters of a shipyard (YAML or base64)

router = Router(tags=["Projects"])


JOBS = Field("", max_length=MAX_SHIPYARD, description="Job definitions as YAML (which command runs which task)")


class CreateProject(Schema):
    name: str = Field(min_length=1, max_length=100, json_schema_extra={"pattern": NAME_PATTERN})
    shipyard: str = Field(max_length=MAX_SHIPYARD, json_schema_extra={"minLength": 1})
    jobs: str = JOBS


class UpdateProject(Schema):
    shipyard: str | None = Field(None, max_length=MAX_SHIPYARD, json_schema_extra={"minLength": 1})
    jobs: str | None = Field(None, max_length=MAX_SHIPYARD,
                             description="Job definitions as YAML; an empty text removes them")


class CreateService(Schema):
    serviceName: str = Field(min_length=1, max_length=100, json_schema_extra={"pattern": NAME_PATTERN})


def _call(function, *args):
    try:
        return function(*args)
    except projects.ProjectError as exc:
        raise HttpError(exc.code, exc.message) from None


def last_event_contexts(project: Project, stages: list[str]) -> dict[str, dict]:
    """Keptn's lastEventContext: the last event of each stage, and of the project under the key ""."""
    found = {}
    for stage in stages + [""]:
        event = (Event.objects.filter(project=project.name, stage=stage).order_by("-id")
                 .only("id", "event_id", "context", "time").first())
        if event is not None:
            found[stage] = event
    info = lambda e: {"eventId": e.event_id, "keptnContext": e.context, "time": now_iso(e.time)}  # noqa: E731
    as_json = {stage: info(e) for stage, e in found.items() if stage}
    if found:
        as_json[""] = info(max(found.values(), key=lambda e: e.id))
    return as_json


def project_json(project: Project) -> dict:
    services = list(project.services.all())
    images = projects.deployed_images(project)
    stage_names = project.parsed_shipyard().stage_names
    last = last_event_contexts(project, stage_names)
    return {
        "projectName": project.name,
        "shipyard": project.shipyard,
        "jobs": project.jobs,
        "shipyardVersion": project.parsed_shipyard().api_version,
        "creationDate": now_iso(project.created_at),
        "lastChangeDate": now_iso(project.updated_at),
        "stages": [
            {"stageName": stage, "services": [{"serviceName": s.name, "creationDate": now_iso(s.created_at),
                                               "deployedImage": images.get((stage, s.name), "")} for s in services],
             **({"lastEventContext": last[stage]} if last.get(stage) else {})}
            for stage in stage_names
        ],
        **({"lastEventContext": last[""]} if last.get("") else {}),
        "warnings": projects.warnings(project),
    }


def _project(name: str) -> Project:
    return project_or_404(name, Project.objects.prefetch_related("services"))


@router.get("/project", summary="List projects", **answers({200: PROJECTS}))
def list_projects(request):
    found = list(Project.objects.prefetch_related("services"))
    return {"projects": [project_json(p) for p in found], "totalCount": len(found), "nextPageKey": "",
            "pageSize": len(found)}


@router.post("/project", summary="Create a project from a shipyard (YAML or base64-encoded YAML)",
             **answers({201: PROJECT}, 403, 409))
def create_project(request, payload: CreateProject):
    require(request, MANAGE)
    if payload.jobs.strip():
        require(request, DEFINE_JOBS)
    project = _call(projects.create_project, payload.name, payload.shipyard, (), payload.jobs)
    return Status(201, project_json(project))


@router.get("/project/{project}", summary="Read a project", **answers({200: PROJECT}, 404))
def get_project(request, project: str):
    return project_json(_project(project))


@router.put("/project/{project}", summary="Replace a project's shipyard and/or its job definitions",
            **answers({200: PROJECT}, 403, 404))
def update_project(request, project: str, payload: UpdateProject):
    require(request, MANAGE)
    if payload.jobs is not None:
        require(request, DEFINE_JOBS)
    found = _project(project)
    if payload.shipyard is None and payload.jobs is None:
        raise HttpError(400, "Send a shipyard, jobs, or both.")
    if payload.jobs is not None:
        _call(projects.validated_jobs, payload.jobs)  # refuse bad jobs before changing the shipyard
    if payload.shipyard is not None:
        _call(projects.update_shipyard, found, payload.shipyard)
    if payload.jobs is not None:
        _call(projects.update_jobs, found, payload.jobs)
    return project_json(_project(project))


class KeptnUpdateProject(Schema):
    """Keptn's models.UpdateProjectParams (`keptn update project`); its Git fields have nothing to change here."""

    name: str = Field(min_length=1, max_length=100)
    shipyard: str | None = Field(None, max_length=MAX_SHIPYARD, json_schema_extra={"minLength": 1})


@router.put("/project", summary="Replace a project's shipyard, named in the body (Keptn's UpdateProject)",
            **answers({201: {"type": "object"}}, 403, 404))
def keptn_update_project(request, payload: KeptnUpdateProject):
    require(request, MANAGE)
    found = _project(payload.name)
    if not payload.shipyard:
        raise HttpError(400, "Send a shipyard to change: Bosun keeps each project's shipyard itself and has no "
                             "Git upstream, so Git settings change nothing.")
    _call(projects.update_shipyard, found, payload.shipyard)
    return Status(201, {})


@router.get("/project/{project}/jobs", summary="A project's job definitions, as the job executor reads them",
            **answers({200: JOBS_ANSWER}, 404, 409))
def get_jobs(request, project: str):
    found = project_or_404(project)
    try:
        parsed = jobs_module.parse(found.jobs)
    except jobs_module.JobsError as exc:  # stored before a rule it breaks: fix it with a PUT
        raise HttpError(409, f"Project {found.name}'s jobs no longer pass the checks ({exc}); replace them with "
                             "PUT /api/controlPlane/v1/project/{project}.") from None
    return {"project": found.name, "jobs": [job.as_json() for job in parsed]}


@router.delete("/project/{project}", summary="Delete a project and everything in it",
               **answers({200: MESSAGE}, 403, 404))
def delete_project(request, project: str):
    require(request, MANAGE)
    found = _project(project)
    _call(projects.delete_project, found)
    return {"message": f"Project '{project}' was deleted."}


@router.post("/project/{project}/service", summary="Create a service (it exists in every stage)",
             **answers({201: SERVICE}, 403, 404, 409))
def create_service(request, project: str, payload: CreateService):
    require(request, MANAGE)
    found = _project(project)
    service = _call(projects.create_service, found, payload.serviceName)
    return Status(201, {"serviceName": service.name, "project": found.name})


@router.delete("/project/{project}/service/{service}", summary="Delete a service",
               **answers({200: MESSAGE}, 403, 404))
def delete_service(request, project: str, service: str):
    require(request, MANAGE)
    found = _project(project)
    _call(projects.delete_service, found, service)
    return {"message": f"Service '{service}' was deleted from project '{project}'."}
