"""What the Bridge's pages show, read with a bounded number of queries whatever the data's size."""

from collections import defaultdict
from datetime import timedelta

from django.db.models import Count, Exists, Max, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from sequences import freeze_config
from sequences.configuration import deployed_images
from sequences.models import Event, Project
from sequences.models import SequenceExecution as SE
from sequences.models import TaskExecution as TE
from sequences.registrations import Takers
from sequences.rules import machine, outcomes
from sequences.rules.outcomes import context_words, run_words
from sequences.rules.outcomes import shown as shown_run
from sequences.store import lanes

PAGE_SIZE = 25
MAX_BATCHES = 8  # a state filter reads at most this many batches of candidates per page, then offers "older"


def _state_filter(key: str) -> Q:
    """The runs that may make a context read as `key` (sequences/rules/outcomes.py), as SQL."""
    anyof, never = outcomes.stored_as(key)
    found = Q()
    for lookups in anyof:
        found |= Q(**lookups)
    return found & ~Q(**never) if never else found


def task_badge(task: TE) -> dict:
    if task.state == TE.FINISHED:
        return {"pass": {"icon": "✔", "label": "passed", "css": "ok"},
                "warning": {"icon": "⚠", "label": "warning", "css": "warn"}}.get(
            task.result, {"icon": "✖", "label": "failed", "css": "bad"})
    return {
        TE.SCHEDULED: {"icon": "◷", "label": "scheduled", "css": "muted"},
        TE.TRIGGERED: {"icon": "•", "label": "triggered, not started", "css": "waiting"},
        TE.STARTED: {"icon": "▶", "label": "running", "css": "running"},
        TE.ABANDONED: {"icon": "⊘", "label": "abandoned", "css": "muted"},
        TE.KILLING: {"icon": "☠", "label": "killing", "css": "warn"},
        TE.KILLED: {"icon": "☠", "label": "killed", "css": "muted"},
        TE.TIMED_OUT: {"icon": "◔", "label": "timed out", "css": "bad"},
    }[task.state]


def image_of(run: SE) -> str:
    values = ((run.input_data or {}).get("configurationChange") or {}).get("values") or {}
    image = values.get("image") if isinstance(values, dict) else None
    return image if isinstance(image, str) else ""


def project_cards(only: Project | None = None) -> list[Project]:
    """Projects with counts of running, waiting and failed-in-24h sequences: one indexed count each."""
    since = timezone.now() - timedelta(hours=24)

    def count(**filters):
        rows = SE.objects.filter(project=OuterRef("pk"), **filters).order_by().values("project")
        return Coalesce(Subquery(rows.annotate(n=Count("id")).values("n")), 0)

    projects = Project.objects.filter(pk=only.pk) if only else Project.objects.all()
    return list(projects.annotate(running=count(holds_lane=True), waiting=count(state=SE.WAITING),
                                  # aborted and superseded are not failures: someone chose to stop them
                                  failed=count(ended_at__gte=since, result="fail",
                                               state__in=(SE.FINISHED, SE.TIMED_OUT))).order_by("name"))


def stage_columns(project: Project) -> list[list[str]]:
    """Stages in shipyard order; stages triggered by the same stage stand side by side in one column."""
    shipyard = project.parsed_shipyard()
    level: dict[str, int] = {}
    for stage in shipyard.stages:
        sources = [t.stage for seq in stage.sequences for t in seq.triggered_on if t.stage != stage.name]
        level[stage.name] = max((level.get(s, 0) + 1 for s in sources), default=0)
    columns: dict[int, list[str]] = defaultdict(list)
    for stage in shipyard.stages:
        columns[level[stage.name]].append(stage.name)
    return [columns[k] for k in sorted(columns)]


def environment(project: Project, integrations=None) -> dict:
    """Per lane (stage x service): holder and its task, waiting count, latest result and version. The
    project's integrations, when the caller has them, say who may take a triggered task."""
    services = list(project.services.values_list("name", flat=True))
    holders = sorted(SE.objects.filter(project=project, holds_lane=True).order_by(), key=lambda r: r.id)
    current = _current_tasks(holders)
    waiting = dict(((r["stage"], r["service"]), r["n"]) for r in SE.objects.filter(
        project=project, state=SE.WAITING).values("stage", "service").annotate(n=Count("id")))
    latest_ids = [r["last"] for r in SE.objects.filter(project=project, state__in=SE.TERMINAL).values(
        "stage", "service").annotate(last=Max("id")) if r["last"]]
    latest = {(r.stage, r.service): r for r in SE.objects.filter(id__in=latest_ids)}
    latest_words = _latest_words(project, latest.values())
    notes = _queue_notes(SE.objects.filter(project=project)) if waiting else {}
    deployed = deployed_images(project)
    lane_map = {}
    for stage in project.parsed_shipyard().stage_names:
        for service in services:
            lane_map[(stage, service)] = _lane(stage, service, None, None, waiting.get((stage, service), 0),
                                               latest.get((stage, service)), notes.get((stage, service)),
                                               deployed.get((stage, service), ""), latest_words.get((stage, service)),
                                               project=project)
    takers = Takers(project, integrations) if any(t.state == TE.TRIGGERED for t in current.values() if t) else None
    for holder in holders:
        lane = lane_map.get((holder.stage, holder.service))
        if lane and lane["holder"] is None:
            lane.update(_lane(holder.stage, holder.service, holder, current.get(holder.id), lane["waiting"],
                              lane["latest"], lane["queue_note"], lane["deployed"], lane["latest_badge"], takers,
                              project))
    columns = stage_columns(project)
    rows = [{"service": service, "columns": [[lane_map[(stage, service)] for stage in column] for column in columns]}
            for service in services]
    return {"services": services, "columns": columns, "lanes": lane_map, "rows": rows,
            **freezes_shown(project)}


UPCOMING_SHOWN = 8


def freezes_shown(project: Project) -> dict:
    """The environment's freeze windows: every one on now, the next few to come, and how many more there are
    (the API and `bosun freeze list` list them all)."""
    if not project.has_freezes:
        return {"freezes": [], "freezes_more": 0}
    found = [w for w in freeze_config.windows_of(project) if not w["over"]]
    on = [w for w in found if w["active"]]
    coming = [w for w in found if not w["active"]]
    return {"freezes": on + coming[:UPCOMING_SHOWN], "freezes_more": max(0, len(coming) - UPCOMING_SHOWN)}


def _queue_notes(runs) -> dict[tuple, str]:
    """Per lane with a queue: the policy that decides who goes next, in words (the first waiting one's)."""
    waiting = list(runs.filter(state=SE.WAITING).select_related("project").order_by("-queue_priority", "id"))
    info = lanes.queue_info(waiting)
    notes = {}
    for run in waiting:
        notes.setdefault((run.stage, run.service), info.get(run.id, {}).get("description", ""))
    return notes


def _latest_words(project: Project, latest_runs) -> dict[tuple, dict]:
    """(stage, service) -> how its last ended context reads in that lane: a delivery that failed there reads
    "Failed (rolled back)" even when the rollback after it, the lane's last run, passed."""
    latest_runs = list(latest_runs)
    if not latest_runs:
        return {}
    same = defaultdict(list)
    for run in sorted(SE.objects.filter(project=project, context__in={r.context for r in latest_runs}).order_by(),
                      key=lambda r: r.id):
        same[(run.context, run.stage, run.service)].append(run)
    return {(r.stage, r.service): context_words(same[(r.context, r.stage, r.service)]) for r in latest_runs}


def _lane(stage, service, holder, task, waiting, latest, queue_note="", deployed="", latest_words=None,
          takers=None, project=None) -> dict:
    """A lane: who holds it and with which version, how many wait, the last result, what is deployed, whether
    its triggered task has anything to take it, and the freeze it is under (sequences/rules/windows.py)."""
    nobody = takers.nobody(task.name, stage, service) if takers and task and task.state == TE.TRIGGERED \
        and not machine.awaits_decision(task.name, holder.state if holder else "") else ""
    return {"stage": stage, "service": service, "holder": holder, "task": task, "waiting": waiting, "nobody": nobody,
            "frozen": project.freeze(stage, service) if project is not None else None,
            "queue_note": queue_note or "", "deployed": deployed, "holder_version": image_of(holder) if holder else "",
            "latest": latest, "badge": run_words(holder) if holder else None,
            "latest_badge": latest_words or (run_words(latest) if latest else None),
            "version": image_of(latest) if latest else ""}


def lane(project: Project, stage: str, service: str) -> dict:
    """One lane, with indexed queries on that lane only (what a live push re-renders)."""
    runs = SE.objects.in_lane(project, stage, service)
    holder = runs.holding().order_by("id").first()
    task = holder.task_executions.order_by("-index").first() if holder else None
    latest = runs.filter(state__in=SE.TERMINAL).order_by("-id").first()
    waiting = runs.filter(state=SE.WAITING).count()
    note = _queue_notes(runs).get((stage, service), "") if waiting else ""
    deployed = deployed_images(project).get((stage, service), "")
    words = _latest_words(project, [latest]).get((stage, service)) if latest else None
    takers = Takers(project) if task and task.state == TE.TRIGGERED else None
    return _lane(stage, service, holder, task, waiting, latest, note, deployed, words, takers, project)


def _current_tasks(runs) -> dict[int, TE]:
    found = {}
    for task in TE.objects.filter(sequence_execution__in=[r.id for r in runs]).order_by("sequence_execution_id",
                                                                                         "index"):
        found[task.sequence_execution_id] = task  # the last one wins: the current or last task
    return found


def sequence_rows(project: Project, filters: dict, before: int | None = None, size: int = PAGE_SIZE):
    """One row per context, newest first; filters done in SQL; keyset paging on the root's id."""
    roots = SE.objects.filter(project=project, root=True)
    if filters.get("service"):
        roots = roots.filter(service=filters["service"])
    if filters.get("sequence"):
        roots = roots.filter(name=filters["sequence"])
    # EXISTS per root (an index look-up each) lets the newest-first walk stop after one page, where an
    # IN (subquery) would first collect every matching context of the project.
    same_context = SE.objects.filter(project=project, context=OuterRef("context"))
    if filters.get("stage"):
        roots = roots.filter(Exists(same_context.filter(stage=filters["stage"])))
    wanted = filters.get("state") if filters.get("state") in outcomes.FILTER_KEYS else None
    if wanted:
        in_state = SE.objects.filter(_state_filter(wanted), project=project)
        if filters.get("service"):  # every sequence of a context is of the root's service
            in_state = in_state.filter(service=filters["service"])
        if not in_state.exists():  # one look in a state index, rather than a walk of every context
            return [], None
        roots = roots.filter(Exists(same_context.filter(_state_filter(wanted))))
    if not wanted:
        page = list((roots.filter(id__lt=before) if before else roots).order_by("-id")[: size + 1])
        return rows_for(project, page[:size]), (page[size - 1].id if len(page) > size else None)
    # A candidate has a run in the state; it matches when the context as a whole reads so (a delivery whose
    # production failed reads "failed" although its dev run succeeded).
    rows: list[dict] = []
    cursor = before
    for _ in range(MAX_BATCHES):
        batch = list((roots.filter(id__lt=cursor) if cursor else roots).order_by("-id")[: size + 1])
        for row in rows_for(project, batch):
            if row["badge"]["key"] == wanted:
                rows.append(row)
            cursor = row["root"].id
            if len(rows) > size:
                return rows[:size], rows[size - 1]["root"].id
        if len(batch) <= size:
            return rows, None
    return rows, cursor  # read enough for one page: "older" goes on from the last context read


def who_triggered(source: str, sent_by: str) -> str:
    """Who triggered a sequence, in words: the user and token that sent its .triggered event and the event's
    `source` ("alice (token ci) via ci-pipeline"); the Bridge's source names its user already ("bridge (alice)"),
    and a sequence the shipyard chained has Bosun's ("bosun") alone."""
    if sent_by and source and sent_by not in source:
        return f"{sent_by} via {source}"
    return source or sent_by


def trigger_sources(triggered_ids: list[str]) -> dict[str, str]:
    """who_triggered() for each sequence's .triggered event, by the event's id."""
    rows = (Event.objects.order_by().filter(event_id__in=triggered_ids, type__endswith=".triggered")
            .values_list("event_id", "source", "sent_by"))
    return {event_id: who_triggered(source, sent_by) for event_id, source, sent_by in rows}


def rows_for(project: Project, roots: list[SE]) -> list[dict]:
    contexts = [r.context for r in roots]
    runs_by_context: dict[str, list[SE]] = defaultdict(list)
    # Sorted here, not in SQL: an ORDER BY id would lure SQLite onto the project index (a scan of the project).
    all_runs = sorted(SE.objects.filter(project=project, context__in=contexts).order_by(), key=lambda r: r.id)
    for run in all_runs:
        run.project = project  # what it allows and whether its lane is frozen are read without a query
        runs_by_context[run.context].append(run)
    current = _current_tasks(all_runs)
    queues = lanes.queue_info(all_runs)
    order = {s: i for i, s in enumerate(project.parsed_shipyard().stage_names)}
    sources = trigger_sources([r.triggered_id for r in roots])
    rows = []
    for root in roots:
        runs = runs_by_context[root.context]
        active = [r for r in runs if not r.is_terminal]
        shown = shown_run(runs)
        ended = None if active else max((r.ended_at for r in runs if r.ended_at), default=None)
        rows.append({
            "root": root,
            "context": root.context,
            "run": shown,
            "badge": context_words(runs, queues),
            "queue": queues.get(shown.id),
            "stages": sorted({r.stage: {"name": r.stage, "badge": context_words(
                [o for o in runs if o.stage == r.stage], queues)} for r in runs}.values(),
                             key=lambda s: order.get(s["name"], 99)),
            "task": current.get(shown.id),
            "image": image_of(root),
            "triggered_by": sources.get(root.triggered_id, ""),
            # a sequence's time counts from when it really started; before that it is queued
            "started": root.started_at,
            "queued_since": None if root.started_at else root.triggered_at,
            "duration": ((ended or timezone.now()) - (root.started_at or root.triggered_at)),
        })
    return rows


HISTORY_SHOWN = 50


def deployments(project: Project, stage: str, service: str, before: int | None = None) -> tuple[list[dict], int | None]:
    """A lane's deployments, newest first: each `deployment` task that ran there, when it ended, the image, how
    it ended, its sequence and who triggered that; and the id to page on when there are older ones."""
    tasks = (TE.objects.filter(name="deployment", sequence_execution__project=project,
                               sequence_execution__stage=stage, sequence_execution__service=service)
             .exclude(triggered_at=None).select_related("sequence_execution").order_by("-id"))
    if before:
        tasks = tasks.filter(id__lt=before)
    found = list(tasks[:HISTORY_SHOWN + 1])
    older = found[HISTORY_SHOWN - 1].id if len(found) > HISTORY_SHOWN else None
    found = found[:HISTORY_SHOWN]
    sources = trigger_sources([t.sequence_execution.triggered_id for t in found])
    rows = [{"task": task, "run": task.sequence_execution, "badge": task_badge(task),
             "image": image_of(task.sequence_execution),
             "at": task.finished_at or task.started_at or task.triggered_at,
             "took": (task.finished_at - task.started_at) if task.finished_at and task.started_at else None,
             "triggered_by": sources.get(task.sequence_execution.triggered_id, "")} for task in found]
    return rows, older
