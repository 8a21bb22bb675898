"""Sequence executions (Keptn's shape plus queue and timeouts), per-context states, open tasks."""

from typing import Literal

from django.db.models import Max, Min, Prefetch, Q
from ninja import Router
from ninja.errors import HttpError

from sequences import registrations as uniform
from sequences.api.params import PAGE_KEY, PAGE_SIZE, moment, page_key, page_size, project_or_404
from sequences.api.schemas import CONTEXT_STATE, EVENT, SEQUENCE_EXECUTION, answers, page
from sequences.models import Event, SequenceExecution, TaskExecution
from sequences.rules import outcomes, timers
from sequences.rules.machine import run_commands
from sequences.rules.cloudevents import iso_or_none, parse_type, sequence_type
from sequences.store import lanes

router = Router(tags=["Sequences"])
STATES = {s for s, _ in SequenceExecution.STATES}


def _task_events(task: TaskExecution) -> list[dict]:
    rows = []
    for source, entry in task.executors.items():
        rows.append({"eventType": f"sh.keptn.event.{task.name}.started", "source": source,
                     "time": entry.get("started"), "result": "", "status": "", "properties": None})
        if entry.get("finished"):
            rows.append({"eventType": f"sh.keptn.event.{task.name}.finished", "source": source,
                         "time": entry.get("finished"), "result": entry.get("result"),
                         "status": entry.get("status"), "properties": None})
    return rows


def execution_json(execution: SequenceExecution, queue: dict | None, context_runs=(), killable=frozenset(),
                   reruns=()) -> dict:
    """Keptn's sequence execution, plus Bosun's queue, outcome, re-runs and allowed commands. `killable`: ids of
    aborted runs whose abandoned task may still have processes; `reruns`: the executions that run this one
    again (both read once for a page)."""
    tasks = list(execution.task_executions.all())  # prefetched
    previous = [
        {"name": t.name, "triggeredID": t.triggered_id, "result": t.result, "status": t.status,
         "state": t.state, "properties": t.finished_data or None, "finishedBy": t.finished_by or None,
         "attempt": t.attempt}
        for t in tasks if t.state not in TaskExecution.UNFINISHED
    ]
    current = next((t for t in tasks if t.state in TaskExecution.UNFINISHED), None)
    current_json = None
    if current is not None:
        current_json = {
            "name": current.name,
            "triggeredID": current.triggered_id,
            "state": current.state,
            "attempt": current.attempt,
            "events": _task_events(current),
            "timeouts": {key: iso_or_none(getattr(current, field)) for field, key in timers.API_KEYS.items()},
        }
    return {
        "_id": str(execution.execution_id),
        "schemaVersion": "1",
        "scope": {
            "project": execution.project.name,
            "stage": execution.stage,
            "service": execution.service,
            "keptnContext": execution.context,
            "triggeredId": execution.triggered_id,
            "gitcommitid": execution.gitcommitid,
            "eventType": sequence_type(execution.stage, execution.name, "triggered"),
            "status": execution.status,
            "result": execution.result,
        },
        "sequence": {"name": execution.name,
                     "tasks": [{"name": t["name"], "properties": t.get("properties")} for t in execution.tasks]},
        "status": {
            "state": execution.state,
            "stateBeforePause": execution.state_before_pause,
            "previousTasks": previous,
            "currentTask": current_json,
            "message": execution.message,
        },
        "inputProperties": execution.input_data,
        "triggeredAt": iso_or_none(execution.triggered_at),
        "startedAt": iso_or_none(execution.started_at),
        "endedAt": iso_or_none(execution.ended_at),
        "queue": queue or {**lanes.policy_info(execution), "position": None, "blockedBy": None},
        "supersededBy": _superseded_by(execution),
        "rerunOf": _link(execution.rerun_of) if execution.rerun_of_id else None,
        "rerunAs": [_link(r) for r in reruns],
        "outcome": outcomes.as_json(outcomes.run_words(execution, queue, context_runs)),
        "commands": run_commands(execution.state, abandoned_with_executor=execution.id in killable,
                                 refused=not execution.tasks, frozen=execution.frozen()),
    }


def _superseded_by(execution) -> dict | None:
    return _link(execution.superseded_by) if execution.superseded_by_id else None


def _link(other) -> dict:
    return {"keptnContext": other.context, "_id": str(other.execution_id), "sequence": other.name}


@router.get("/sequence-execution", summary="Sequence executions, newest first (Keptn's shape plus queue)",
            **answers({200: page("sequenceExecutions", SEQUENCE_EXECUTION, integer_key=True)}, 404))
def sequence_executions(
    request,
    project: str,
    stage: str | None = None,
    service: str | None = None,
    name: str | None = None,
    status: Literal[tuple(sorted(STATES))] | None = None,
    keptnContext: str | None = None,
    pageSize: int | None = PAGE_SIZE,
    nextPageKey: str | None = PAGE_KEY,
):
    found = project_or_404(project)
    if status and status not in STATES:
        raise HttpError(400, f"status must be one of {', '.join(sorted(STATES))}.")
    size, offset = page_size(pageSize), page_key(nextPageKey)
    executions = SequenceExecution.objects.filter(project=found)
    for field, value in (("stage", stage), ("service", service), ("name", name), ("state", status),
                         ("context", keptnContext)):
        if value:
            executions = executions.filter(**{field: value})
    total = executions.count()
    page = list(
        executions.select_related("project", "superseded_by", "rerun_of")
        .prefetch_related(Prefetch("task_executions", queryset=TaskExecution.objects.order_by("index")))
        .order_by("-id")[offset: offset + size]
    )
    queues = lanes.queue_info(page)
    # a failed run reads "Failed (rolled back)" when a later run of its context put it right
    failed = {e.context for e in page if outcomes.run_words(e)["key"] == "failed"}
    of_context: dict[str, list] = {}
    if failed:
        for run in SequenceExecution.objects.filter(project=found, context__in=failed).order_by("id"):
            of_context.setdefault(run.context, []).append(run)
    aborted = [e.id for e in page if e.state == SequenceExecution.ABORTED]
    killable = set(TaskExecution.objects.filter(sequence_execution__in=aborted).killable_abandoned()
                   .values_list("sequence_execution_id", flat=True)) if aborted else set()
    reruns: dict[int, list] = {}
    for rerun in SequenceExecution.objects.filter(rerun_of__in=[e.id for e in page]).order_by("id"):
        reruns.setdefault(rerun.rerun_of_id, []).append(rerun)
    return {
        "sequenceExecutions": [execution_json(e, queues.get(e.id), of_context.get(e.context, ()), killable,
                                              reruns.get(e.id, ())) for e in page],
        # Keptn's models.SequenceExecutionResult: an integer, absent on the last page
        **({"nextPageKey": offset + size} if offset + size < total else {}),
        "pageSize": len(page),
        "totalCount": total,
    }


def _image(data: dict) -> str:
    values = (data.get("configurationChange") or {}).get("values") or {}
    image = values.get("image") if isinstance(values, dict) else None
    return image if isinstance(image, str) else ""


def _latest_events(project, contexts: list[str]) -> dict[tuple[str, str], dict]:
    """(context, stage) -> its latest event of any kind, task events included, as Keptn's Bridge shows it."""
    if not contexts:
        return {}
    last = (Event.objects.filter(context__in=contexts, project=project.name).exclude(stage="")
            .values("context", "stage").annotate(last=Max("id")))
    found = {}
    for event in Event.objects.filter(id__in=[row["last"] for row in last]).only("context", "stage", "type",
                                                                                   "time", "event_id"):
        found[(event.context, event.stage)] = {"type": event.type, "time": iso_or_none(event.time), "id": event.event_id}
    return found


def _context_state(runs: list[SequenceExecution]) -> str:
    return outcomes.shown(runs).state


@router.get("/sequence/{project}", summary="Per-context state across stages (Keptn's SequenceStates)",
            **answers({200: {**page("states", CONTEXT_STATE), "properties": {
                **page("states", CONTEXT_STATE)["properties"], "nextPageKey": {"type": "integer", "minimum": 0}}}}, 404))
def sequence_states(
    request,
    project: str,
    name: str | None = None,
    state: str | None = None,
    fromTime: str | None = None,
    beforeTime: str | None = None,
    keptnContext: str | None = None,
    pageSize: int | None = PAGE_SIZE,
    nextPageKey: str | None = PAGE_KEY,
):
    found = project_or_404(project)
    size, offset = page_size(pageSize), page_key(nextPageKey)
    runs = SequenceExecution.objects.filter(project=found)
    if name:
        runs = runs.filter(name=name)
    if state:
        runs = runs.filter(state=state)
    for value, name_, lookup in ((fromTime, "fromTime", "triggered_at__gte"),
                                 (beforeTime, "beforeTime", "triggered_at__lt")):
        when = moment(value, name_)
        if when is not None:
            runs = runs.filter(**{lookup: when})
    if keptnContext:
        runs = runs.filter(context__in=[c.strip() for c in keptnContext.split(",") if c.strip()])
    contexts = runs.values("context").annotate(first=Min("id")).order_by("-first")
    total = contexts.count()
    page = [row["context"] for row in contexts[offset: offset + size]]
    by_context: dict[str, list[SequenceExecution]] = {c: [] for c in page}
    for run in SequenceExecution.objects.filter(project=found, context__in=page).order_by("id"):
        by_context[run.context].append(run)
    stage_order = {s: i for i, s in enumerate(found.parsed_shipyard().stage_names)}
    latest = _latest_events(found, page)
    states = []
    for context in page:
        context_runs = by_context[context]
        first = context_runs[0]
        stages = {}
        for run in context_runs:
            stages[run.stage] = {
                "name": run.stage,
                "state": run.state,
                "result": run.result,
                "image": _image(run.input_data),
                "latestEvent": latest.get((context, run.stage)) or {
                    "type": sequence_type(run.stage, run.name, "finished" if run.is_terminal else "triggered"),
                    "time": iso_or_none(run.ended_at or run.triggered_at), "id": run.triggered_id},
            }
        for stage in stages.values():  # how the stage reads: a rollback there does not undo its failure
            stage["outcome"] = outcomes.as_json(outcomes.context_words(
                [r for r in context_runs if r.stage == stage["name"]]))
        states.append({
            "name": first.name,
            "project": found.name,
            "service": first.service,
            "shkeptncontext": context,
            "state": _context_state(context_runs),
            "outcome": outcomes.as_json(outcomes.context_words(context_runs)),
            "time": iso_or_none(first.triggered_at),
            "stages": sorted(stages.values(), key=lambda s: stage_order.get(s["name"], 99)),
        })
    # Keptn's models.SequenceStates: nextPageKey is an integer, 0 when there is no further page
    return {"states": states, "nextPageKey": offset + size if offset + size < total else 0,
            "pageSize": len(states), "totalCount": total}


def _offered_to(integration, event_type: str) -> Q:
    """The open tasks an integration's subscriptions to this event type match (none if it has none)."""
    offered = Q(pk__in=[])
    for subscription in integration.subscribed_to(event_type):
        match = Q()
        for key, field in (("projects", "sequence_execution__project__name"), ("stages", "sequence_execution__stage"),
                           ("services", "sequence_execution__service")):
            if (subscription.get("filter") or {}).get(key):
                match &= Q(**{f"{field}__in": subscription["filter"][key]})
        offered |= match
    return offered


@router.get("/event/triggered/{eventType}", summary="Open tasks of a type, for polling executors",
            **answers({200: page("events", EVENT)}))
def triggered_events(request, eventType: str, project: str | None = None, stage: str | None = None,
                     service: str | None = None, eventID: str | None = None, pageSize: int | None = PAGE_SIZE,
                     integrationId: str | None = None):
    """Open tasks of a type. project, stage and service take a name or a comma-separated list (as Keptn's
    distributor sends a subscription's filter); with integrationId, only what its subscriptions match."""
    parsed = parse_type(eventType)
    if parsed is None or parsed.kind != "triggered" or parsed.is_sequence:
        raise HttpError(400, f"'{eventType}' is not a task's .triggered type (sh.keptn.event.<task>.triggered).")
    size = page_size(pageSize)
    subscriber = None
    if integrationId:
        subscriber = uniform.Integration.objects.filter(integration_id=integrationId).first()
        if subscriber is None:
            raise HttpError(404, f"No integration is registered with id {integrationId}.")
    tasks = TaskExecution.objects.open().filter(name=parsed.task)
    for field, value in (("sequence_execution__project__name", project), ("sequence_execution__stage", stage),
                         ("sequence_execution__service", service), ("triggered_id", eventID)):
        names = [part.strip() for part in (value or "").split(",") if part.strip()]
        if names:
            tasks = tasks.filter(**{f"{field}__in": names})
    if subscriber is not None:
        tasks = tasks.filter(_offered_to(subscriber, eventType))
    ids = list(tasks.order_by("id").values_list("triggered_id", flat=True)[:size])
    events = Event.objects.filter(event_id__in=ids, type=eventType).order_by("id")
    payloads = [e.payload for e in events]
    return {"events": payloads, "nextPageKey": "", "pageSize": len(payloads), "totalCount": len(payloads)}
