"""The rest of Keptn's surface that its CLI and clients call: auth, metadata, and the project's stage views."""

from django.db.models import Max
from ninja import Router

from sequences.api.events import event_page
from sequences.api.params import PAGE_KEY, PAGE_SIZE, project_or_404
from sequences.api.schemas import BOOLEAN, INTEGER, OBJECT, STRING, answers, obj
from sequences.configuration import deployed_images
from sequences.models import Event, Project
from sequences.rules.cloudevents import now_iso

router = Router(tags=["Keptn"])
VERSION = "1.4.5"  # the Keptn release whose API Bosun answers as

METADATA = obj({"automaticprovisioning": BOOLEAN},
               {"namespace": STRING, "keptnlabel": STRING, "keptnversion": STRING, "shipyardversion": STRING,
                "bridgeversion": STRING, "keptnservices": OBJECT})
SERVICE_VIEW = obj({"serviceName": STRING}, {"creationDate": STRING, "deployedImage": STRING,
                                              "lastEventTypes": OBJECT})
STAGE_VIEW = obj({"stageName": STRING, "services": {"type": "array", "items": SERVICE_VIEW}},
                 {"parentStages": {"type": "array", "items": STRING}})


def _page(key: str, items: list) -> dict:
    return {key: items, "nextPageKey": "0", "pageSize": len(items), "totalCount": len(items)}


@router.post("/v1/auth", summary="Check the API token (as `keptn auth` does)", **answers({200: OBJECT}))
def auth(request):
    return {"message": "Authenticated", "user": request.user.get_username()}


@router.get("/v1/metadata", summary="What this server is (as Keptn's CLI asks)", **answers({200: METADATA}))
def metadata(request):
    return {"namespace": "bosun", "keptnlabel": "bosun", "keptnversion": VERSION, "bridgeversion": VERSION,
            "shipyardversion": "0.2.3", "keptnservices": {}, "automaticprovisioning": False}


def _last_event_types(project: Project, stage: str, service: str) -> dict:
    rows = (Event.objects.filter(project=project.name, stage=stage, service=service)
            .values("type").annotate(last=Max("id")))
    found = {}
    for event in Event.objects.filter(id__in=[row["last"] for row in rows]).only("type", "event_id", "context", "time"):
        found[event.type] = {"eventId": event.event_id, "keptnContext": event.context, "time": now_iso(event.time)}
    return found


def service_view(project: Project, stage: str, service, images: dict) -> dict:
    return {"serviceName": service.name, "creationDate": now_iso(service.created_at),
            "deployedImage": images.get((stage, service.name), ""),
            "lastEventTypes": _last_event_types(project, stage, service.name)}


def stage_view(project: Project, stage, images: dict) -> dict:
    parents = sorted({t.stage for q in stage.sequences for t in q.triggered_on if t.stage != stage.name})
    return {"stageName": stage.name, "parentStages": parents,
            "services": [service_view(project, stage.name, s, images) for s in project.services.all()]}


def _stage(project: Project, name: str):
    from ninja.errors import HttpError

    stage = project.parsed_shipyard().stage(name)
    if stage is None:
        raise HttpError(404, f"Project '{project.name}' has no stage '{name}'.")
    return stage


@router.get("/controlPlane/v1/project/{project}/stage", summary="A project's stages with their services",
            **answers({200: {"type": "object", "properties": {"stages": {"type": "array", "items": STAGE_VIEW}}}}, 404))
def stages(request, project: str):
    found = project_or_404(project)
    images = deployed_images(found)
    return _page("stages", [stage_view(found, s, images) for s in found.parsed_shipyard().stages])


@router.get("/controlPlane/v1/project/{project}/stage/{stage}", summary="One stage", **answers({200: STAGE_VIEW}, 404))
def stage(request, project: str, stage: str):
    found = project_or_404(project)
    return stage_view(found, _stage(found, stage), deployed_images(found))


@router.get("/controlPlane/v1/project/{project}/stage/{stage}/service", summary="A stage's services",
            **answers({200: {"type": "object", "properties": {"services": {"type": "array", "items": SERVICE_VIEW}}}},
                      404))
def stage_services(request, project: str, stage: str):
    found = project_or_404(project)
    _stage(found, stage)
    images = deployed_images(found)
    return _page("services", [service_view(found, stage, s, images) for s in found.services.all()])


@router.get("/controlPlane/v1/project/{project}/stage/{stage}/service/{service}", summary="A service in a stage",
            **answers({200: SERVICE_VIEW}, 404))
def stage_service(request, project: str, stage: str, service: str):
    from ninja.errors import HttpError

    found = project_or_404(project)
    _stage(found, stage)
    match = found.services.filter(name=service).first()
    if match is None:
        raise HttpError(404, f"Project '{project}' has no service '{service}'.")
    return service_view(found, stage, match, deployed_images(found))


# --- Keptn's event store (the keptn CLI and the Bridge of Keptn read events here) ---------------------

EVENTS = {"type": "object", "properties": {"events": {"type": "array", "items": OBJECT}, "nextPageKey": STRING,
                                           "pageSize": INTEGER, "totalCount": INTEGER}}
FILTER_FIELDS = {"data.project": "project", "data.stage": "stage", "data.service": "service",
                 "shkeptncontext": "keptnContext", "id": "eventID", "source": "source", "triggeredid": "triggeredid"}


@router.get("/mongodb-datastore/event", summary="The event log (Keptn's datastore path)", **answers({200: EVENTS}))
def datastore_events(request, keptnContext: str | None = None, type: str | None = None, project: str | None = None,
                     stage: str | None = None, service: str | None = None, source: str | None = None,
                     eventID: str | None = None, fromTime: str | None = None, beforeTime: str | None = None,
                     pageSize: int | None = PAGE_SIZE, nextPageKey: str | None = PAGE_KEY):
    return event_page(keptnContext=keptnContext, type=type, project=project, stage=stage, service=service,
                      source=source, eventID=eventID, fromTime=fromTime, beforeTime=beforeTime, pageSize=pageSize,
                      nextPageKey=nextPageKey)


@router.get("/mongodb-datastore/event/type/{eventType}", summary="Events of a type, filtered as Keptn's datastore does",
            **answers({200: EVENTS}))
def datastore_events_of_type(request, eventType: str, filter: str = "", limit: int | None = PAGE_SIZE,
                             fromTime: str | None = None):
    """filter: `data.project:sockshop AND data.service:carts` (also data.stage, shkeptncontext, id, source)."""
    from ninja.errors import HttpError

    criteria = {}
    for part in [p.strip() for p in filter.split(" AND ") if p.strip()]:
        key, _, value = part.partition(":")
        if key.strip() not in FILTER_FIELDS or not value.strip():
            raise HttpError(400, f"filter {part!r} is not one Bosun reads: use key:value joined by AND, with keys "
                                 f"{', '.join(FILTER_FIELDS)}.")
        criteria[FILTER_FIELDS[key.strip()]] = value.strip()
    triggered = criteria.pop("triggeredid", None)
    page = event_page(type=eventType, fromTime=fromTime, pageSize=limit, **criteria)
    if triggered:
        page["events"] = [e for e in page["events"] if e.get("triggeredid") == triggered]
    # Keptn answers the newest first here
    return {"events": list(reversed(page["events"]))}
