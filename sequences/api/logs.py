"""Keptn's log API: the errors integrations report (sequences/integration_logs.py). Reading takes any token;
writing and deleting take the operate permission, as the uniform registration paths do."""

import json

from ninja import Router
from ninja.errors import HttpError

from sequences import integration_logs
from sequences.api.auth import OPERATE, require
from sequences.api.params import moment, page_key
from sequences.api.schemas import INTEGER, STRING, answers, obj

router = Router(tags=["Log (integrations' errors)"])

LOG_ENTRY = obj({"integrationid": STRING, "message": STRING, "time": STRING},
                {"shkeptncontext": STRING, "task": STRING, "triggeredid": STRING, "gitcommitid": STRING})
LOGS = obj({"logs": {"type": "array", "items": LOG_ENTRY}, "pageSize": INTEGER, "totalCount": INTEGER},
           {"nextPageKey": {"type": "integer", "minimum": 1}},
           description="Keptn's models.GetLogsResponse: newest first; nextPageKey only when more follow")
EMPTY = {"type": "object"}


def _size(value: str | None) -> int | None:
    if value in (None, "", "0"):  # Keptn's clients send no pageSize, or 0, for "all"
        return None
    maximum = integration_logs.PAGE_MAXIMUM
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= maximum:
        raise HttpError(400, f"pageSize must be a whole number between 1 and {maximum}, not {value[:20]!r}.")
    return int(value)


def _window(fromTime: str | None, beforeTime: str | None):
    return moment(fromTime, "fromTime"), moment(beforeTime, "beforeTime")


@router.post("/log", summary="Store an integration's errors (Keptn's CreateLogsRequest)",
             **answers({200: EMPTY}, 403, 413))
def create_logs(request):
    require(request, OPERATE)
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, RecursionError):
        raise HttpError(400, "The body must be JSON: {\"logs\": [...]} (Keptn's CreateLogsRequest).") from None
    try:
        integration_logs.store(body)
    except integration_logs.LogError as exc:
        raise HttpError(exc.code, exc.message) from None
    return {}


@router.get("/log", summary="Integrations' errors, newest first (Keptn's GetLogsResponse)",
            **answers({200: LOGS}))
def get_logs(request, integrationId: str | None = None, fromTime: str | None = None,
             beforeTime: str | None = None, pageSize: str | None = None, nextPageKey: str | None = None):
    start, end = _window(fromTime, beforeTime)
    return integration_logs.page(integrationId, start, end, _size(pageSize), page_key(nextPageKey))


@router.delete("/log", summary="Delete integrations' errors (all of one integration, or in a time window)",
               **answers({200: EMPTY}, 403))
def delete_logs(request, integrationId: str | None = None, fromTime: str | None = None,
                beforeTime: str | None = None):
    require(request, OPERATE)
    start, end = _window(fromTime, beforeTime)
    integration_logs.delete(integrationId, start, end)
    return {}
