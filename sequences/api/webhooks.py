"""A project's webhooks and their delivery log (sequences/notices/outbox.py)."""

from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import StrictBool

from sequences.api.auth import MANAGE, actor, require
from sequences.api.params import PAGE_KEY, PAGE_SIZE, page_key, page_size, project_or_404
from sequences.api.schemas import BOOLEAN, INTEGER, OPT_STRING, STRING, TIME, answers, obj
from sequences.notices import outbox as webhooks

router = Router(tags=["Webhooks"])

STRINGS = {"type": "array", "items": STRING}
WEBHOOK = obj({"id": INTEGER, "project": STRING, "url": STRING, "events": STRINGS, "active": BOOLEAN,
               "createdBy": STRING, "createdAt": STRING},
              {"secret": {"type": "string", "description": "Only in the answer that created the webhook"}})
DELIVERY = obj({"id": INTEGER, "webhookId": INTEGER, "eventId": STRING, "eventType": STRING,
                "state": {"type": "string", "enum": [s for s, _ in webhooks.Delivery.STATES]},
                "attempts": INTEGER, "nextAttemptAt": TIME, "lastStatus": {"type": ["integer", "null"]},
                "lastError": STRING, "lastDurationMs": {"type": ["number", "null"]}, "createdAt": TIME,
                "deliveredAt": TIME})
EVENTS = Field(None, max_length=webhooks.MAX_PATTERNS,
               description="Event types, with Keptn's wildcards (sh.keptn.event.*.finished, sh.keptn.event.>); "
                           "empty or left out: every event of the project")


class CreateWebhook(Schema):
    url: str = Field(min_length=1, max_length=500, description="The receiver's http or https URL")
    events: list[str] | None = EVENTS
    secret: str | None = Field(None, min_length=16, max_length=200,
                               description="Signs each delivery; left out, Bosun makes one and answers it once")
    active: StrictBool = True


class UpdateWebhook(Schema):
    url: str | None = Field(None, min_length=1, max_length=500)
    events: list[str] | None = EVENTS
    active: StrictBool | None = None


def _call(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except webhooks.WebhookError as exc:
        raise HttpError(exc.code, exc.message) from None


def _hook(project: str, webhookId: int) -> webhooks.Webhook:
    found = webhooks.Webhook.objects.select_related("project").filter(
        project=project_or_404(project), id=webhookId).first()
    if found is None:
        raise HttpError(404, f"Project '{project}' has no webhook {webhookId}.")
    return found


@router.get("/project/{project}/webhook", summary="A project's webhooks (their secrets are not shown)",
            **answers({200: obj({"webhooks": {"type": "array", "items": WEBHOOK}})}, 404))
def list_webhooks(request, project: str):
    found = project_or_404(project).webhooks.all()
    return {"webhooks": [hook.as_json() for hook in found]}


@router.post("/project/{project}/webhook", summary="Add a webhook: the project's events, POSTed and signed",
             **answers({201: WEBHOOK}, 403, 404))
def create_webhook(request, project: str, payload: CreateWebhook):
    require(request, MANAGE)
    hook = _call(webhooks.create, project_or_404(project), payload.dict(exclude_unset=True), actor(request))
    return Status(201, hook.as_json(secret=True))


@router.get("/project/{project}/webhook/{webhookId}", summary="One webhook", **answers({200: WEBHOOK}, 404))
def get_webhook(request, project: str, webhookId: int):
    return _hook(project, webhookId).as_json()


@router.put("/project/{project}/webhook/{webhookId}", summary="Change a webhook's URL, events or switch it off",
            **answers({200: WEBHOOK}, 403, 404))
def update_webhook(request, project: str, webhookId: int, payload: UpdateWebhook):
    require(request, MANAGE)
    return _call(webhooks.update, _hook(project, webhookId), payload.dict(exclude_unset=True)).as_json()


@router.delete("/project/{project}/webhook/{webhookId}", summary="Remove a webhook and its delivery log",
               **answers({200: obj({"message": STRING})}, 403, 404))
def delete_webhook(request, project: str, webhookId: int):
    require(request, MANAGE)
    webhooks.delete(_hook(project, webhookId))
    return {"message": f"Webhook {webhookId} of project '{project}' is removed."}


@router.get("/project/{project}/webhook/{webhookId}/delivery", summary="A webhook's deliveries, newest first",
            **answers({200: obj({"deliveries": {"type": "array", "items": DELIVERY}, "pageSize": INTEGER,
                                 "nextPageKey": OPT_STRING})}, 404))
def deliveries(request, project: str, webhookId: int, pageSize: int | None = PAGE_SIZE,
               state: str | None = None, nextPageKey: str | None = PAGE_KEY):
    size = page_size(pageSize)
    found = _hook(project, webhookId).deliveries.select_related("event")
    if state:
        if state not in dict(webhooks.Delivery.STATES):
            raise HttpError(400, f"state must be pending, delivered or failed, not {state[:40]!r}.")
        found = found.filter(state=state)
    before = page_key(nextPageKey)
    if before:
        found = found.filter(id__lt=before)
    rows = list(found.order_by("-id")[:size + 1])
    more = len(rows) > size
    return {"deliveries": [d.as_json() for d in rows[:size]], "pageSize": size,
            "nextPageKey": str(rows[size - 1].id) if more else None}


@router.post("/project/{project}/webhook/{webhookId}/delivery/{deliveryId}/retry",
             summary="Send a pending or failed delivery again now", **answers({200: DELIVERY}, 403, 404, 409))
def retry(request, project: str, webhookId: int, deliveryId: int):
    require(request, MANAGE)
    found = _hook(project, webhookId).deliveries.filter(id=deliveryId)
    delivery = found.select_related("event").first()
    if delivery is None:
        raise HttpError(404, f"Webhook {webhookId} has no delivery {deliveryId}.")
    if delivery.state == webhooks.Delivery.DELIVERED:
        raise HttpError(409, f"Delivery {deliveryId} was delivered already.")
    webhooks.retry_now(found)
    delivery.refresh_from_db()
    return delivery.as_json()
