"""Event intake: validate a client's CloudEvent, apply it once, store it, and answer.

What an event changes is done by sequences/transitions/flow.py; this module decides whether and to what it applies.
"""

import time
import uuid
from dataclasses import dataclass, field

from django.utils import timezone

from sequences.models import Event, Project, SequenceExecution, Service, TaskExecution
from sequences.notices import metrics as observe
from sequences.rules import cloudevents as ev
from sequences.rules.cloudevents import EventError
from sequences.store import locks
from sequences.store.db import announce, write_transaction
from sequences.store.prepared import Prepared
from sequences.transitions import deadlines, flow, task_moves
from sequences.transitions.refusals import refuse_sequence
from sequences.transitions.eventlog import DuplicateEvent, store_event, together

SE = SequenceExecution
TE = TaskExecution

MAX_BATCH_EVENTS = 1000  # events in one CloudEvents batch request (413 beyond)
MAX_BATCH_BYTES = 8 * 1024 * 1024  # bytes of one batch request (413 beyond)


@dataclass
class Receipt:
    """The answer to one incoming event."""

    code: int
    event_id: str
    keptn_context: str | None = None
    message: str = ""
    duplicate: bool = False
    extra: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        if self.code >= 400:
            body = {"code": self.code, "message": self.message}
            if self.keptn_context:
                body["keptnContext"] = self.keptn_context
            body["id"] = self.event_id
            return body
        body = {"keptnContext": self.keptn_context, "id": self.event_id}
        if self.duplicate:
            body["duplicate"] = True
        if self.message:
            body["message"] = self.message
        return body


# --- intake ----------------------------------------------------------------------------------


def receive_event(raw, sent_by: str = "") -> Receipt:
    """Validate, store and apply one client event; `sent_by` names who sent it (kept with a sequence's trigger)."""
    try:
        incoming = ev.validate_incoming(raw)
    except EventError as exc:
        event_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else ""
        return Receipt(exc.code, event_id, message=exc.message)
    try:
        with write_transaction():
            return _apply(incoming, sent_by=sent_by)
    except DuplicateEvent as exc:
        if (exc.event_id, exc.event_type) != (incoming.id, incoming.type):
            raise
        # Received before: its own insert met the unique index and what this arrival did is rolled back. The
        # look-up is made here, on the rare path, rather than before every event (one statement fewer each).
        previous = _seen_before(incoming)
        return _again(incoming, previous) if previous else Receipt(exc.code, incoming.id, message=exc.message)


def receive_batch(raws: list, sent_by: str = "") -> list[Receipt]:
    """CloudEvents batch mode: applied in order, in one transaction, one receipt per event.

    A batch holds at most MAX_BATCH_EVENTS events, so the transaction holds the writer for a bounded time
    (about half a second for the largest batch). The events seen before and the tasks the batch names are
    looked up in one query each (a Known).
    """
    batch = []
    for raw in raws:
        try:
            batch.append(ev.validate_incoming(raw))
        except EventError as exc:
            event_id = raw.get("id", "") if isinstance(raw, dict) else ""
            batch.append(Receipt(exc.code, event_id if isinstance(event_id, str) else "", message=exc.message))
    with write_transaction():
        known = Known([i for i in batch if isinstance(i, ev.IncomingEvent)])
        return [incoming if isinstance(incoming, Receipt) else _apply(incoming, known, sent_by) for incoming in batch]


class Known:
    """What a batch finds in the database before it is applied: one query for the events seen before, one
    for the tasks it names. An entry is used once; an event or task the batch itself has touched since is
    looked up again."""

    def __init__(self, incoming: list):
        ids = {i.id for i in incoming}
        self.events = {(e.event_id, e.type): e for e in Event.objects.order_by().filter(event_id__in=ids)}
        triggered = {i.triggered_id for i in incoming if not i.parsed.is_sequence and i.triggered_id}
        self.tasks = locks.lock_tasks(triggered)
        self.touched: set = set()

    def event(self, incoming):
        key = (incoming.id, incoming.type)
        if key in self.touched:
            return _seen_before(incoming)
        self.touched.add(key)
        return self.events.get(key)

    def task(self, triggered_id):
        if triggered_id in self.touched:
            return _task(triggered_id)
        self.touched.add(triggered_id)
        return self.tasks.get(triggered_id)


def _seen_before(incoming):
    """The outcome and context of this event if it was received before (one indexed look-up per event)."""
    found = _seen(incoming.id, incoming.type)
    return Seen(*found[0]) if found else None


_seen = Prepared(lambda event_id, type: Event.objects.order_by().filter(event_id=event_id, type=type)
                 .values_list("outcome", "context")[:1], str, str, values=True)


@dataclass
class Seen:
    outcome: str
    context: str


def _task(triggered_id):
    return locks.lock_task(triggered_id)


def _again(incoming: ev.IncomingEvent, previous: "Seen") -> Receipt:
    """The answer to an event received before: what it was answered then, and nothing applied twice."""
    return Receipt(
        200 if previous.outcome != Event.REJECTED else 409,
        incoming.id,
        previous.context or None,
        message=f"Event {incoming.id} was received before ({previous.outcome}); it is not applied twice.",
        duplicate=True,
    )


def _apply(incoming: ev.IncomingEvent, known: Known | None = None, sent_by: str = "") -> Receipt:
    """Apply one event. A batch (`known`) looks up the events it holds that were received before, all in one
    query; a single event is stored first thing instead, and one received before fails that insert
    (DuplicateEvent, answered by receive_event)."""
    previous = known.event(incoming) if known else None
    if previous is not None:
        return _again(incoming, previous)
    with together():  # the event and those it makes Bosun emit: one INSERT, at the end
        if incoming.parsed.is_sequence:
            return _apply_sequence_trigger(incoming, sent_by)
        return _apply_task_event(incoming, known)


def _apply_sequence_trigger(incoming: ev.IncomingEvent, sent_by: str) -> Receipt:
    data = incoming.data
    # The project with the service, in one look-up; which one is missing is asked only when one is.
    found = _service(data["project"], data["service"])
    service = found[0] if found else None
    if service is None:
        if not Project.objects.filter(name=data["project"]).exists():
            return Receipt(404, incoming.id, message=f"Project '{data['project']}' does not exist.")
        return Receipt(404, incoming.id, message=f"Project '{data['project']}' has no service '{data['service']}'.")
    project = service.project
    shipyard = project.parsed_shipyard()
    stage, name = incoming.parsed.stage, incoming.parsed.sequence
    context = incoming.context or str(uuid.uuid4())
    missing = unknown_target(project, stage, name)
    if missing:
        payload = {**incoming.raw, "id": incoming.id, "shkeptncontext": context, "time": _arrival(incoming)}
        store_event(payload, context=context, note=missing, sent_by=sent_by)
        refuse_sequence(project, stage, name, data["service"], data, context, incoming.id,
                        incoming.raw.get("gitcommitid") or "", missing)
        return Receipt(202, incoming.id, context, message=missing)
    sequence = shipyard.sequence(stage, name)
    new_context = not incoming.context  # a context Bosun just made up: nothing can run in it yet
    if not new_context and SE.objects.active().filter(context=context, stage=stage, name=name,
                                                      service=data["service"]).exists():
        previous = _seen_before(incoming)  # this very trigger, sent again while its sequence runs
        if previous is not None:
            return _again(incoming, previous)
        return Receipt(
            409, incoming.id, context,
            message=f"Sequence '{name}' already runs in stage '{stage}' for context {context}.",
        )
    payload = {**incoming.raw, "id": incoming.id, "shkeptncontext": context, "time": _arrival(incoming)}
    store_event(payload, context=context, sent_by=sent_by)
    flow.trigger_sequence(project, stage, sequence, data["service"], data, context, incoming.id,
                          incoming.raw.get("gitcommitid") or "", new_context=new_context)
    return Receipt(202, incoming.id, context)


_service = Prepared(lambda project, name: Service.objects.order_by().select_related("project").filter(
    project__name=project, name=name)[:1], str, str)


def unknown_target(project, stage: str, name: str) -> str:
    """Why `<stage>.<name>` cannot run in the project (naming what exists), or "" when it can."""
    shipyard = project.parsed_shipyard()
    if shipyard.stage(stage) is None:
        return f"Project '{project.name}' has no stage '{stage}'; its stages are {', '.join(shipyard.stage_names)}."
    if shipyard.sequence(stage, name) is None:
        names = ", ".join(s.name for s in shipyard.stage(stage).sequences)
        return f"Stage '{stage}' has no sequence '{name}'; it has {names}."
    return ""


def _arrival(incoming: ev.IncomingEvent) -> str:
    """The event's own time, or the moment it arrived when it has none (Go's clients send their zero time,
    0001-01-01T00:00:00Z, for an event whose time they did not set; Keptn stamps those on arrival too)."""
    value = incoming.raw.get("time")
    return value if value and not value.startswith("0001-01-01T00:00:00") else ev.now_iso()


def _apply_task_event(incoming: ev.IncomingEvent, known: Known | None = None) -> Receipt:
    task = known.task(incoming.triggered_id) if known else _task(incoming.triggered_id)
    if task is None:
        reason = f"No task was triggered with id {incoming.triggered_id}; the event is stored and changes nothing."
        store_event(incoming.raw | {"id": incoming.id, "time": _arrival(incoming)}, outcome=Event.REJECTED,
                         note=reason)
        return Receipt(409, incoming.id, incoming.context, message=reason)
    sequence = task.sequence_execution
    context = sequence.context
    if incoming.context and incoming.context != context:
        reason = (f"Task {task.triggered_id} belongs to context {context}, not {incoming.context}; "
                  "the event is stored and changes nothing.")
        store_event(incoming.raw | {"id": incoming.id, "time": _arrival(incoming)}, outcome=Event.REJECTED,
                         note=reason, context=incoming.context)
        return Receipt(409, incoming.id, incoming.context, message=reason)
    data = {**incoming.data}
    for key in ("project", "stage", "service"):
        data.setdefault(key, getattr(sequence, key) if key != "project" else sequence.project.name)
    payload = incoming.raw | {"id": incoming.id, "shkeptncontext": context, "data": data,
                              "time": _arrival(incoming)}
    counted, oddities = ev.executor_verdict(data)
    if not task.is_open:
        reason = _closed_reason(task)
        store_event(payload, outcome=Event.REJECTED, note=reason, context=context)
        return Receipt(409, incoming.id, context, message=reason)
    kind = incoming.parsed.kind
    store_event(payload, context=context, note=oddities if kind == "finished" else "")
    now = timezone.now()
    if kind == "started":
        task_moves.executor_started(task, sequence, incoming.source, now)
    elif kind == "status.changed":
        deadlines.heard_from(task, sequence, now)
    else:  # finished
        handoff_started = time.perf_counter()
        _executor_finished(task, sequence, incoming.source, counted, now)
        if task.state != TE.STARTED:
            observe.handoff(handoff_started)
    announce(sequence.project.name, context, stage=sequence.stage, service=sequence.service)
    return Receipt(202, incoming.id, context)


def _executor_finished(task, sequence, source, data, now):
    """A `.finished` from one executor; the task ends when every executor that started it has finished."""
    if not task_moves.executor_finished(task, source, data, now):
        return
    result, status = task_moves.outcome(task.executors.values())
    flow.finish_task(task, sequence, "finish", TE.FINISHED, result, status, data.get("message") or "", now,
                     also=["executors", "started_at", "finished_data", "last_heard_at"])


def _closed_reason(task: TaskExecution) -> str:
    why = {
        TE.SCHEDULED: "is not triggered yet (it waits for its triggeredAfter delay)",
        TE.FINISHED: "has already finished" + (f" (finished by {task.finished_by})" if task.finished_by else ""),
        TE.ABANDONED: "was abandoned when its sequence was aborted with force",
        TE.KILLING: "is being killed",
        TE.KILLED: "was killed",
        TE.TIMED_OUT: "has timed out",
    }.get(task.state, f"is {task.state}")
    return f"Task '{task.name}' ({task.triggered_id}) {why}; the event is stored and changes nothing."
