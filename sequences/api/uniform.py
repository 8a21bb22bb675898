"""Keptn's uniform registration paths, as the distributor and go-sdk call them (sequences/registrations.py)."""

import json

from ninja import Router
from ninja.errors import HttpError
from ninja.responses import Status

from sequences import registrations as uniform
from sequences.api.auth import OPERATE, require
from sequences.api.schemas import OBJECT, STRING, answers, obj

router = Router(tags=["Uniform (Keptn integrations)"])

SUBSCRIPTION = obj({"id": STRING, "event": STRING},
                   {"filter": obj({}, {key: {"type": "array", "items": STRING}
                                       for key in ("projects", "stages", "services")})})
INTEGRATION = obj({"id": STRING, "name": STRING},
                  {"metadata": OBJECT, "subscriptions": {"type": "array", "items": SUBSCRIPTION}})
REGISTERED = obj({"id": STRING})
EMPTY = {"type": "object"}


def _body(request):
    try:
        return json.loads(request.body or b"null")
    except (ValueError, RecursionError):
        raise HttpError(400, "The body must be JSON (Keptn's models.Integration or models.EventSubscription).")


def _call(function, *args):
    try:
        return function(*args)
    except uniform.UniformError as exc:
        raise HttpError(exc.code, exc.message) from None


@router.get("/uniform/registration", summary="Integrations, filtered by id, name, project, stage or service",
            **answers({200: {"type": "array", "items": INTEGRATION}}))
def integrations(request, id: str | None = None, name: str | None = None, project: str | None = None,
                 stage: str | None = None, service: str | None = None):
    found = uniform.Integration.objects.all()
    if id:
        found = found.filter(integration_id=id)
    if name:
        found = found.filter(name=name)
    rows = []
    for integration in found[:500]:
        if (project or stage or service) and not any(
                _partial(s, project, stage, service) for s in integration.subscriptions):
            continue
        rows.append(integration.as_keptn())
    return rows


def _partial(subscription: dict, project, stage, service) -> bool:
    filter_ = subscription.get("filter") or {}
    return all(not value or not filter_.get(key) or value in filter_[key]
               for key, value in (("projects", project), ("stages", stage), ("services", service)))


@router.post("/uniform/registration", summary="Register an integration (200 when it was known, 201 when new)",
             **answers({200: REGISTERED, 201: REGISTERED}, 403, 409, 413))
def register(request):
    require(request, OPERATE)
    integration, created = _call(uniform.register, _body(request), request.user)
    return Status(201 if created else 200, {"id": integration.integration_id})


@router.delete("/uniform/registration/{integrationID}", summary="Unregister an integration",
               **answers({200: EMPTY}, 403))
def unregister(request, integrationID: str):
    require(request, OPERATE)
    _call(uniform.unregister, integrationID, request.user)
    return {}


@router.put("/uniform/registration/{integrationID}/ping", summary="An integration says it is alive",
            **answers({200: INTEGRATION}, 403, 404))
def ping(request, integrationID: str):
    require(request, OPERATE)
    return _call(uniform.ping, integrationID, request.user).as_keptn()


@router.get("/uniform/registration/{integrationID}/subscription", summary="An integration's subscriptions",
            **answers({200: {"type": "array", "items": SUBSCRIPTION}}, 404))
def subscriptions(request, integrationID: str):
    return _call(uniform.get, integrationID).subscriptions


@router.post("/uniform/registration/{integrationID}/subscription", summary="Add a subscription",
             **answers({201: REGISTERED}, 403, 404, 413))
def add_subscription(request, integrationID: str):
    require(request, OPERATE)
    subscription = _call(uniform.put_subscription, integrationID, request.user, _body(request))
    return Status(201, {"id": subscription["id"]})


@router.get("/uniform/registration/{integrationID}/subscription/{subscriptionID}", summary="One subscription",
            **answers({200: SUBSCRIPTION}, 404))
def subscription(request, integrationID: str, subscriptionID: str):
    found = next((s for s in _call(uniform.get, integrationID).subscriptions if s.get("id") == subscriptionID), None)
    if found is None:
        raise HttpError(404, f"Integration {integrationID} has no subscription {subscriptionID}.")
    return found


@router.put("/uniform/registration/{integrationID}/subscription/{subscriptionID}",
            summary="Replace (or create) a subscription", **answers({201: REGISTERED}, 403, 404, 413))
def replace_subscription(request, integrationID: str, subscriptionID: str):
    require(request, OPERATE)
    _call(uniform.put_subscription, integrationID, request.user, _body(request), subscriptionID[:64])
    return Status(201, {"id": subscriptionID[:64]})


@router.delete("/uniform/registration/{integrationID}/subscription/{subscriptionID}",
               summary="Delete a subscription", **answers({200: EMPTY}, 403, 404))
def delete_subscription(request, integrationID: str, subscriptionID: str):
    require(request, OPERATE)
    _call(uniform.delete_subscription, integrationID, request.user, subscriptionID)
    return {}
