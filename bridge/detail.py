"""What a sequence's deep link shows: the whole road of a context, its controls, who waits behind it."""

from collections import defaultdict
from datetime import timedelta

from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from sequences import integration_logs
from sequences.registrations import Takers
from sequences.models import ControlAction, Event, Project
from sequences.models import SequenceExecution as SE
from sequences.models import TaskExecution as TE
from sequences.models import TaskLog
from sequences.rules import approvals, machine, timers
from sequences.rules.outcomes import context_words, run_words
from sequences.rules.outcomes import shown as shown_run
from sequences.store import lanes

from .ansi import styled_lines
from .queries import image_of, task_badge, who_triggered

LOG_LINES_SHOWN = 200
BEHIND_SHOWN = 10


def context_detail(project: Project, context: str) -> dict | None:
    """Runs per stage with their tasks and events, the steps still ahead, queue, who waits behind, audit."""
    runs = sorted(SE.objects.filter(project=project, context=context).select_related("superseded_by").order_by(),
                  key=lambda r: r.id)
    if not runs:
        return None
    for run in runs:
        run.project = project
    tasks_by_run: dict[int, list[TE]] = defaultdict(list)
    tasks = list(TE.objects.filter(sequence_execution__in=[r.id for r in runs]).order_by("index", "id"))
    for task in tasks:
        tasks_by_run[task.sequence_execution_id].append(task)
    events = list(Event.objects.filter(context=context).order_by("id"))
    by_triggered: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_triggered[event.triggered_id or event.event_id].append(event)
    queues = lanes.queue_info(runs)
    now = timezone.now()
    logs = {entry.task_id: entry for entry in TaskLog.objects.filter(task__in=[t.id for t in tasks])}
    reported = integration_logs.of_tasks([t.triggered_id for t in tasks])
    takers = Takers(project) if any(t.state == TE.TRIGGERED for t in tasks) else None
    shipyard = project.parsed_shipyard()
    order = {s: i for i, s in enumerate(shipyard.stage_names)}
    reruns = _reruns(runs, context)
    root_trigger = next((e for e in events if e.event_id == runs[0].triggered_id), None)
    starter = approvals.person(root_trigger.sent_by) if root_trigger else ""
    latest = {(r.stage, r.name): r.id for r in runs}  # runs are in id order: the last one of each wins
    stages = []
    for run in sorted(runs, key=lambda r: (order.get(r.stage, 99), r.id)):
        run_tasks = []
        retry_point = run.retry_point(tasks_by_run[run.id])
        for task in tasks_by_run[run.id]:
            policy = (run.task_spec(task.index) or {}).get("retry")
            run_tasks.append({"task": task, "badge": task_badge(task),
                              "attempt": f"attempt {task.attempt} of {policy['limit'] + 1}"
                              if policy and task.attempt <= policy["limit"] + 1
                              else f"attempt {task.attempt}" if task.attempt > 1 else "",
                              "can": machine.task_commands(task.state, run.state, task.name,
                                                           task is retry_point),
                              "events": by_triggered.get(task.triggered_id, []),
                              "executors": _executors(task), "deadlines": _deadlines(task, now),
                              "reported": reported.get(task.triggered_id, []),
                              "nobody": takers.nobody(task.name, run.stage, run.service)
                              if takers and task.state == TE.TRIGGERED
                              and not machine.awaits_decision(task.name, run.state) else "",
                              "elapsed": now - task.started_at if task.state == TE.STARTED and task.started_at
                              else None,
                              "job": job_view(task, logs.get(task.id), project.name, context),
                              "approval": approvals.shown(approvals.rule_of(run.task_spec(task.index)),
                                                          task.approvals, starter)
                              if task.name == "approval" and (task.approvals or run.state == SE.WAITING_FOR_APPROVAL)
                              else None})
        task_messages = {t.message for t in tasks_by_run[run.id] if t.message}
        stages.append({
            "run": run, "badge": run_words(run, queues.get(run.id), runs), "queue": queues.get(run.id), "tasks": run_tasks,
            "image": image_of(run),
            # a reason is shown once, where it happened: on the task when a task carries it
            "message": run.message if run.is_terminal and run.message not in task_messages else "",
            "pending": [] if run.is_terminal else [t["name"] for t in run.tasks[len(run_tasks):]],
            # a run that never had a task (its stage or sequence is not in the shipyard): its own events
            "own_events": [] if run.tasks else by_triggered.get(run.triggered_id, []),
            "waited": (run.started_at or now) - run.triggered_at,
            "lane_went_to": _successor(run) if run.state in (SE.ABORTED, SE.TIMED_OUT) else None,
            # re-run: offered on the latest run of a sequence in its stage, once the state machine allows it
            "can_rerun": latest[(run.stage, run.name)] == run.id and "retrigger" in run.commands(),
            # through a freeze: a run that waits in a frozen lane or holds under a window
            "can_let_through": "let-through" in run.commands(),
            "rerun_of": next((r for r in runs if r.id == run.rerun_of_id), None) or (
                run.rerun_of if run.rerun_of_id else None),
            "rerun_as": reruns.get(run.id, []),
            "first_stage": run.id == runs[0].id,
        })
    active = [r for r in runs if not r.is_terminal]
    shown = shown_run(runs)
    ordered = sorted(runs, key=lambda r: (order.get(r.stage, 99), r.id))
    audit = list(ControlAction.objects.filter(project=project.name, context=context).select_related(
        "task_execution").order_by("id"))
    behind = _behind(runs)
    return {"context": context, "runs": runs, "stages": stages, "shown": shown,
            "badge": context_words(runs, queues), "root": runs[0], "audit": audit, "events": events,
            "can": _allowed(runs), "ahead": _stages_ahead(shipyard, runs) if active else [],
            "behind": behind[:BEHIND_SHOWN], "behind_count": len(behind),
            "head_message": shown.message if not shown.is_terminal else "",
            "durations": durations(ordered, tasks_by_run, now),
            "triggered_by": next((who_triggered(e.source, e.sent_by) for e in events
                                  if e.event_id == runs[0].triggered_id), "")}


def _reruns(runs: list[SE], context: str) -> dict[int, list[SE]]:
    """The executions that run each of `runs` again: in this context, and in new ones (one query, on an index
    that holds re-runs only)."""
    found: dict[int, list[SE]] = defaultdict(list)
    for run in runs:
        if run.rerun_of_id:
            found[run.rerun_of_id].append(run)
    for run in SE.objects.filter(rerun_of__in=[r.id for r in runs]).exclude(context=context).order_by("id"):
        found[run.rerun_of_id].append(run)
    return found


def durations(runs: list[SE], tasks_by_run: dict, now) -> dict | None:
    """The context on one time axis: per stage, how long it waited for its lane, and per task how long it
    waited for an executor and how long it ran (the running one up to now). Positions are % of the axis."""
    start = min(r.triggered_at for r in runs)
    ends = [r.ended_at or now for r in runs] + [t.finished_at or now for ts in tasks_by_run.values() for t in ts]
    span = max(max(ends) - start, timedelta(seconds=1))

    def at(moment):
        return round(100 * (moment - start) / span, 2)

    rows = []
    for run in runs:
        waited = (run.started_at or run.ended_at or now) - run.triggered_at
        if waited.total_seconds() >= 1:
            rows.append({"label": run.stage, "what": "in the queue", "css": "queue", "left": at(run.triggered_at),
                         "width": max(0.5, at(run.started_at or run.ended_at or now) - at(run.triggered_at)),
                         "took": waited, "since": None})
        for task in tasks_by_run.get(run.id, []):
            if task.triggered_at is None:
                continue
            began = task.started_at or task.triggered_at
            end = task.finished_at or (now if task.state in (TE.TRIGGERED, TE.STARTED, TE.KILLING) else began)
            running, badge = task.state == TE.STARTED, task_badge(task)
            width = max(0.5, at(end) - at(task.triggered_at))
            again = f" (attempt {task.attempt})" if task.attempt > 1 else " (re-run)" if run.rerun_of_id else ""
            rows.append({"label": f"{run.stage} · {task.name}{again}", "what": badge["label"], "css": badge["css"],
                         "left": at(task.triggered_at), "width": width, "took": end - began,
                         # the share of its bar it waited for an executor to start it
                         "waited": min(100.0, round(100 * (at(began) - at(task.triggered_at)) / width, 2)),
                         "since": task.started_at if running else None})
    return {"rows": rows, "span": span, "start": start} if rows else None


def _executors(task: TE) -> list[dict]:
    """Who started the task and whether each has finished: a task waits for every executor that started it."""
    rows = []
    for source, entry in sorted((task.executors or {}).items()):
        done = bool(entry.get("finished"))
        rows.append({"source": source, "finished": done, "result": entry.get("result") or "",
                     "css": "ok" if done and entry.get("result") in ("pass", "warning") else
                     ("bad" if done else "running")})
    return rows


def _stages_ahead(shipyard, runs) -> list[dict]:
    """Stages the context has not reached yet, as they will follow if everything passes (greyed steps)."""
    reached = {(r.stage, r.name) for r in runs}
    ahead, frontier = [], [(r.stage, r.name) for r in runs if not r.is_terminal]
    seen = set(reached)
    while frontier:
        stage, name = frontier.pop(0)
        for next_stage, sequence in shipyard.chained(stage, name, "pass", {}):
            key = (next_stage.name, sequence.name)
            if key in seen:
                continue
            seen.add(key)
            ahead.append({"stage": next_stage.name, "sequence": sequence.name, "tasks": [t.name for t in sequence.tasks]})
            frontier.append(key)
    return ahead


def _behind(runs) -> list[SE]:
    """Sequences of other contexts waiting in the lanes this context holds."""
    held = [r for r in runs if r.holds_lane]
    if not held:
        return []
    lane_filter = Q()
    for run in held:
        lane_filter |= Q(project_id=run.project_id, stage=run.stage, service=run.service)
    return list(SE.objects.filter(lane_filter).waiting().exclude(context=held[0].context)[:100])


def _successor(run: SE) -> SE | None:
    """The sequence that took the lane when this one ended."""
    if run.ended_at is None:
        return None
    return (SE.objects.in_lane(run.project_id, run.stage, run.service).filter(started_at__gte=run.ended_at)
            .exclude(context=run.context).order_by("started_at").first())


def job_view(task: TE, entry: TaskLog | None, project_name: str, context: str) -> dict | None:
    """What the deep link shows of the job that runs a task: its facts and the tail of its log."""
    if not task.claimed_by and not task.facts and entry is None:
        return None
    lines = entry.shown().splitlines() if entry else []
    facts = task.facts or {}
    return {
        "task": task,
        "claimed_by": task.claimed_by,
        "facts": facts,
        "files": facts.get("outputFiles") or [],
        "tail": styled_lines("\n".join(lines[-LOG_LINES_SHOWN:])),
        "hidden_lines": max(0, len(lines) - LOG_LINES_SHOWN),
        "cut_bytes": entry.cut_bytes if entry else 0,
        "total_bytes": entry.total_bytes if entry else 0,
        "running": task.state in (TE.STARTED, TE.KILLING),
        "log_url": reverse("task-log", args=[project_name, context, task.triggered_id]),
        "viewer_url": reverse("task-log-view", args=[project_name, context, task.triggered_id]),
    }


def job_for(triggered_id: str) -> dict | None:
    task = TE.objects.filter(triggered_id=triggered_id).select_related("sequence_execution__project").first()
    if task is None:
        return None
    run = task.sequence_execution
    return job_view(task, TaskLog.objects.filter(task=task).first(), run.project.name, run.context)


def _deadlines(task: TE, now) -> list[dict]:
    """Countdowns in words that say what happens at the end: "times out in 9m 59s unless an executor starts it"."""
    found = []
    for timer in timers.of_state(task.state):
        moment = getattr(task, timer.field)
        if moment and timer.before:
            found.append({"before": timer.before, "after": timer.after, "at": moment,
                          "seconds": max(0, int((moment - now).total_seconds()))})
    return found


def _allowed(runs) -> dict:
    """Which controls the state machine allows now (sequences/rules/machine.py); one that does not apply is
    not offered. `escalate`: force or kill, where a graceful abort is under way; `kill`: the task a force
    abort abandoned while an executor ran it."""
    allowed = [set(run.commands()) for run in runs]
    return {
        "pause": any("pause" in a for a in allowed),
        "resume": any("resume" in a for a in allowed),
        "abort": any("abort:graceful" in a for a in allowed),
        "escalate": any("abort:force" in a and "abort:graceful" not in a for a in allowed),
        "kill": any("abort:kill" in a and "abort:force" not in a for a in allowed),
    }
