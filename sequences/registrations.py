"""Keptn's uniform: execution-plane integrations that register, ping, and subscribe to task events.

Keptn's distributor and go-sdk register a service that runs remotely (`POST /uniform/registration`), ping
it while it lives, and keep its subscriptions: an event type plus a filter on projects, stages and
services. Bosun stores them as Keptn does, shows them on the Bridge as a project's integrations, and offers
an integration only the open tasks its subscriptions match (`GET .../event/triggered/{type}?integrationId=`).
"""

import hashlib
import json
import re
import unicodedata
import uuid

from django.utils import timezone

from sequences.models import Integration
from sequences.rules import jobs as jobs_module

MAX_SUBSCRIPTIONS = 100
MAX_FILTER_ITEMS = 100
MAX_SUBSCRIPTIONS_BYTES = 64 * 1024  # all of an integration's subscriptions, as JSON
MAX_PER_USER = 50  # integrations one user's tokens may register
MAX_INTEGRATIONS = 1000
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}")


class UniformError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


# --- reading what a client sent: liberal in what it accepts, strict in what it stores --------------


def _text(value, what: str, limit: int = 200) -> str:
    if value is None:
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise UniformError(400, f"{what} must be a string.")
    value = str(value)
    if len(value) > limit:
        raise UniformError(400, f"{what} is longer than {limit} characters.")
    control = next((c for c in value if unicodedata.category(c) in ("Cc", "Cs")), None)
    if control is not None:
        raise UniformError(400, f"{what} contains the control character U+{ord(control):04X}; remove it.")
    return value


def _name(value) -> str:
    name = _text(value, "name")
    if not name:
        raise UniformError(400, "name is required: the integration's name, e.g. helm-service.")
    if not NAME.fullmatch(name):
        raise UniformError(400, f"name {name[:80]!r} is not an integration name: use letters, digits and "
                                "'. _ : / @ + -', starting with a letter or digit (e.g. helm-service).")
    return name


def _names(value, what: str) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or len(value) > MAX_FILTER_ITEMS:
        raise UniformError(400, f"{what} must be a list of at most {MAX_FILTER_ITEMS} names.")
    return [_text(v, what, 100) for v in value]


def subscription_from(raw, subscription_id: str | None = None) -> dict:
    """A subscription as Bosun stores it, from Keptn's models.EventSubscription."""
    if not isinstance(raw, dict):
        raise UniformError(400, "A subscription must be an object with event and filter.")
    event = _text(raw.get("event"), "subscription event")
    if not event:
        raise UniformError(400, "A subscription needs an event, e.g. sh.keptn.event.deployment.triggered.")
    filter_ = raw.get("filter") or {}
    if not isinstance(filter_, dict):
        raise UniformError(400, "A subscription's filter must be an object with projects, stages and services.")
    return {
        "id": subscription_id or _text(raw.get("id"), "subscription id", 64) or str(uuid.uuid4()),
        "event": event,
        "filter": {key: _names(filter_.get(key), f"filter.{key}") for key in ("projects", "stages", "services")},
    }


def _metadata(raw) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UniformError(400, "metadata must be an object (hostname, integrationversion, ...).")
    kept = {key: _text(raw.get(key), f"metadata.{key}") for key in
            ("hostname", "integrationversion", "distributorversion", "location") if raw.get(key) is not None}
    kubernetes = raw.get("kubernetesmetadata")
    if isinstance(kubernetes, dict):
        kept["kubernetesmetadata"] = {key: _text(kubernetes.get(key), f"kubernetesmetadata.{key}")
                                      for key in ("namespace", "podname", "deploymentname")
                                      if kubernetes.get(key) is not None}
    return kept


def integration_id(name: str, metadata: dict) -> str:
    """Keptn's id: a hash of name, namespace and host, so a restarted service registers as itself."""
    namespace = (metadata.get("kubernetesmetadata") or {}).get("namespace", "")
    return hashlib.sha1(f"{name}-{namespace}-{metadata.get('hostname', '')}".encode()).hexdigest()


# --- the actions ---------------------------------------------------------------------------------------


def _sized(subscriptions: list[dict]) -> list[dict]:
    size = len(json.dumps(subscriptions))
    if size > MAX_SUBSCRIPTIONS_BYTES:
        raise UniformError(413, f"The subscriptions take {size} bytes as JSON; an integration's may take at most "
                                f"{MAX_SUBSCRIPTIONS_BYTES}.")
    return subscriptions


def _owned(found: Integration, user) -> Integration:
    """The integration, when `user` may change it: its owner (or anyone, for one registered before owners)."""
    if found.owner_id is not None and found.owner_id != user.id and not user.is_superuser:
        raise UniformError(403, f"Integration '{found.name}' on '{found.hostname or 'an unknown host'}' belongs to "
                                "another user; register yours under another name or host.")
    return found


def register(raw, user) -> tuple[Integration, bool]:
    """Register an integration for `user`; returns it and whether it is new. A known one is seen again."""
    if not isinstance(raw, dict):
        raise UniformError(400, "The registration must be a JSON object (Keptn's models.Integration).")
    name = _name(raw.get("name"))
    metadata = _metadata(raw.get("metadata"))
    raw_subscriptions = raw.get("subscriptions") or []
    if not isinstance(raw_subscriptions, list) or len(raw_subscriptions) > MAX_SUBSCRIPTIONS:
        raise UniformError(400, f"subscriptions must be a list of at most {MAX_SUBSCRIPTIONS}.")
    subscriptions = [subscription_from(s) for s in raw_subscriptions]
    legacy = raw.get("subscription")  # Keptn's deprecated single subscription: topics + filter
    if not subscriptions and isinstance(legacy, dict) and isinstance(legacy.get("topics"), list):
        filter_ = legacy.get("filter") or {}
        for topic in legacy["topics"][:MAX_SUBSCRIPTIONS]:
            subscriptions.append(subscription_from({"event": topic, "filter": {
                "projects": filter_.get("project"), "stages": filter_.get("stage"),
                "services": filter_.get("service")}}))
    _sized(subscriptions)
    key = integration_id(name, metadata)
    now = timezone.now()
    found = Integration.objects.filter(integration_id=key).first()
    if found is not None:
        _owned(found, user)
        found.metadata, found.last_seen, found.owner = {**found.metadata, **metadata}, now, found.owner or user
        found.save(update_fields=["metadata", "last_seen", "owner"])
        return found, False
    if Integration.objects.filter(owner=user).count() >= MAX_PER_USER:
        raise UniformError(409, f"User '{user.get_username()}' has {MAX_PER_USER} integrations registered, the "
                                "most one user may; unregister some first.")
    if Integration.objects.count() >= MAX_INTEGRATIONS:
        raise UniformError(409, f"Bosun holds {MAX_INTEGRATIONS} integrations, the most it keeps; unregister "
                                "some first.")
    return Integration.objects.create(integration_id=key, name=name, metadata=metadata, owner=user,
                                      subscriptions=subscriptions, registered_at=now, last_seen=now), True


def get(integration_id_: str) -> Integration:
    found = Integration.objects.filter(integration_id=integration_id_).first()
    if found is None:
        raise UniformError(404, f"No integration is registered with id {integration_id_}.")
    return found


def ping(integration_id_: str, user) -> Integration:
    found = _owned(get(integration_id_), user)
    found.last_seen = timezone.now()
    found.save(update_fields=["last_seen"])
    return found


def put_subscription(integration_id_: str, user, raw, subscription_id: str | None = None) -> dict:
    """Add a subscription (POST) or replace the one with this id (PUT)."""
    found = _owned(get(integration_id_), user)
    subscription = subscription_from(raw, subscription_id)
    others = [s for s in found.subscriptions if s.get("id") != subscription["id"]]
    if len(others) >= MAX_SUBSCRIPTIONS:
        raise UniformError(400, f"An integration may have at most {MAX_SUBSCRIPTIONS} subscriptions.")
    found.subscriptions = _sized(others + [subscription])
    found.save(update_fields=["subscriptions"])
    return subscription


def delete_subscription(integration_id_: str, user, subscription_id: str):
    found = _owned(get(integration_id_), user)
    found.subscriptions = [s for s in found.subscriptions if s.get("id") != subscription_id]
    found.save(update_fields=["subscriptions"])


def unregister(integration_id_: str, user):
    found = Integration.objects.filter(integration_id=integration_id_).first()
    if found is not None:
        _owned(found, user).delete()


def of_project(project: str) -> list[Integration]:
    """The integrations whose subscriptions can match this project's events, for the Bridge."""
    return [i for i in Integration.objects.all() if i.concerns(project)]


class Takers:
    """Who may take a project's triggered tasks: its job definitions (run by `bosun executor`) and the registered
    integrations whose subscriptions match. Read once per page; `nobody()` says when nothing here takes one."""

    def __init__(self, project, integrations: list[Integration] | None = None):
        self.project = project.name
        try:
            self.jobs = jobs_module.parse(project.jobs or "")
        except jobs_module.JobsError:
            self.jobs = []
        self.integrations = of_project(project.name) if integrations is None else integrations

    def nobody(self, task: str, stage: str, service: str) -> str:
        """Why a triggered task may never start, in words, or "" when a job or an integration takes it."""
        if any(job.matches(task, stage, service) for job in self.jobs):
            return ""
        event = f"sh.keptn.event.{task}.triggered"
        if any(i.offers(event, self.project, stage, service) for i in self.integrations):
            return ""
        return (f"Nothing here takes task '{task}': no job of this project runs it in {stage}/{service} and no "
                f"registered integration subscribes to {event}. It waits for an executor of your own, or times out.")
