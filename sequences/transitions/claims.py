"""What job executors tell Bosun about the tasks they run: the claim, the log and the task's facts.

A job executor claims an open task (one claim wins: a second executor is answered 409) and Bosun records
a `.started` event from it, as a Keptn executor would send. While the job runs, the executor streams its
output (kept bounded: the tail survives, the cut is counted) and reports facts (machine, exit code,
computation time, output files). Cancel, kill and suspend requests reach it through heartbeat answers.
"""

import logging
import math
from dataclasses import dataclass

from django.utils import timezone

from sequences.models import TaskExecution, TaskLog
from sequences.rules import cloudevents as ev
from sequences.store import locks
from sequences.store.db import announce, write_transaction
from sequences.store.signals import task_log_changed
from sequences.transitions import task_moves
from sequences.transitions.eventlog import store_event

TE = TaskExecution
log = logging.getLogger("bosun.executors")

DEFAULT_HEARTBEAT_TIMEOUT = 30.0  # seconds, for tasks a job executor runs (unless the shipyard says)
MAX_LOG_CHARS = 256 * 1024  # the most of a task's output that is kept: its head and its tail
LOG_HEAD_CHARS = TaskLog.HEAD_CHARS
MAX_CHUNK_CHARS = 64 * 1024  # one log request
FACT_KEYS = {"machine": str, "platform": str, "pid": int, "exitCode": int, "signal": str,
             "computationSeconds": float, "cpuSeconds": float, "outputFiles": list, "outputBytes": int,
             "job": str, "startedAt": str, "endedAt": str}


@dataclass
class Answer:
    code: int
    body: dict


def _refused(code: int, message: str, **extra) -> Answer:
    return Answer(code, {"code": code, "message": message, **extra})


def _task(triggered_id: str):
    return TE.objects.select_related("sequence_execution", "sequence_execution__project").filter(
        triggered_id=triggered_id).first()


def claim(triggered_id: str, executor: str, *, kill_grace: float | None = None, machine: dict | None = None,
          user=None) -> Answer:
    """An executor claims an open task: it runs it, alone. Recorded as a `.started` event from it."""
    if not executor or len(executor) > 200:
        return _refused(400, "executor must name the executor (1-200 characters).")
    with write_transaction():
        task = locks.lock_task(triggered_id)
        if task is None:
            return _refused(404, f"No task was triggered with id {triggered_id}.")
        run = task.sequence_execution
        if not task.is_open:
            return _refused(409, f"Task '{task.name}' is {task.state}; it cannot be claimed.", state=task.state)
        if task.claimed_by == executor:
            return Answer(200, claim_body(task))  # a retry of its own claim
        if task.claimed_by:
            return _refused(409, f"Task '{task.name}' is claimed by {task.claimed_by}.", claimedBy=task.claimed_by)
        now = timezone.now()
        task.claimed_by = executor
        task.claimed_by_user = user
        task.kill_grace = kill_grace
        if task.heartbeat_timeout is None and not (run.task_spec(task.index) or {}).get("heartbeatTimeout"):
            task.heartbeat_timeout = DEFAULT_HEARTBEAT_TIMEOUT
        task.facts = {**task.facts, **_clean_facts(machine or {})}
        data = {"project": run.project.name, "stage": run.stage, "service": run.service}
        payload = ev.make_event(ev.task_type(task.name, "started"), data, run.context, task.triggered_id, now,
                                gitcommitid=run.gitcommitid)
        payload["source"] = executor
        store_event(payload, context=run.context)
        task_moves.executor_started(task, run, executor, now, also=("claimed_by", "claimed_by_user", "kill_grace", "heartbeat_timeout",
                                                                  "facts"))
        announce(run.project.name, run.context, stage=run.stage, service=run.service)
        return Answer(200, claim_body(task))


def claim_body(task) -> dict:
    run = task.sequence_execution
    heartbeat = (run.task_spec(task.index) or {}).get("heartbeatTimeout") or task.heartbeat_timeout
    return {"triggeredId": task.triggered_id, "task": task.name, "state": task.state, "claimedBy": task.claimed_by,
            "keptnContext": run.context, "heartbeatTimeoutSeconds": heartbeat}


RUNNING = (TaskExecution.STARTED, TaskExecution.KILLING)


def _not_reporter(task, user) -> Answer | None:
    """Why `user` may not add to this task's log or facts (None when they may): only while it runs, and
    only the user whose token claimed it (anyone who may operate, for a task no executor claimed)."""
    if task.state not in RUNNING:
        return _refused(409, f"Task '{task.name}' is {task.state}: its log and facts are closed.", state=task.state)
    if task.claimed_by_user_id is not None and user is not None and task.claimed_by_user_id != user.id:
        return _refused(403, f"Task '{task.name}' is run by {task.claimed_by}; only its executor reports its log "
                             "and facts.")
    return None


def append_log(triggered_id: str, text: str, user=None) -> Answer:
    """Append a job's output; at most MAX_LOG_CHARS characters are kept: its first LOG_HEAD_CHARS and its tail."""
    if not isinstance(text, str):
        return _refused(400, "text must be a string.")
    if len(text) > MAX_CHUNK_CHARS:
        return _refused(413, f"A log chunk is at most {MAX_CHUNK_CHARS} characters; send it in parts.")
    text = text.replace("\x00", "\ufffd")
    with write_transaction():
        task = _task(triggered_id)
        if task is None:
            return _refused(404, f"No task was triggered with id {triggered_id}.")
        refusal = _not_reporter(task, user)
        if refusal is not None:
            return refusal
        entry, _ = TaskLog.objects.get_or_create(task=task)
        combined = entry.text + text
        cut = max(0, len(combined) - MAX_LOG_CHARS)
        if cut:  # the middle goes; how the job started stays, as does how it goes on
            entry.text = combined[:LOG_HEAD_CHARS] + combined[LOG_HEAD_CHARS + cut:]
            entry.cut_bytes += len(combined[LOG_HEAD_CHARS:LOG_HEAD_CHARS + cut].encode("utf-8", "replace"))
        else:
            entry.text = combined
        entry.total_bytes += len(text.encode("utf-8", "replace"))
        entry.save()
        run = task.sequence_execution
        project, context = run.project.name, run.context
        from django.db import transaction

        transaction.on_commit(lambda: task_log_changed.send(sender=None, project=project, context=context,
                                                            triggered_id=triggered_id))
        return Answer(200, log_info(entry))


def log_response(task, download: bool):
    """A task's log as text (its head and tail, if it was cut): the API's and the Bridge's download."""
    from django.http import HttpResponse

    entry = TaskLog.objects.filter(task=task).first()
    response = HttpResponse(entry.shown() if entry else "", content_type="text/plain; charset=utf-8")
    if download:
        response["Content-Disposition"] = f'attachment; filename="{task.name}-{task.triggered_id}.log"'
    return response


def log_info(entry: TaskLog | None) -> dict:
    if entry is None:
        return {"totalBytes": 0, "keptBytes": 0, "cutBytes": 0}
    return {"totalBytes": entry.total_bytes, "keptBytes": entry.total_bytes - entry.cut_bytes,
            "cutBytes": entry.cut_bytes}


def _clean_facts(facts: dict) -> dict:
    """Liberal in what executors send: known facts of the right type are kept, the rest dropped."""
    clean = {}
    for key, kind in FACT_KEYS.items():
        value = facts.get(key)
        if value is None:
            continue
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(value):
                clean[key] = float(value)
        elif kind is int and isinstance(value, int) and not isinstance(value, bool):
            clean[key] = value
        elif kind is str and isinstance(value, str):
            clean[key] = value[:500]
        elif kind is list and isinstance(value, list):
            clean[key] = value[:200]
    if "outputFiles" in clean:
        clean["outputFiles"] = [{"name": str(f.get("name"))[:300], "size": int(f.get("size") or 0)}
                                for f in clean["outputFiles"] if isinstance(f, dict) and f.get("name")
                                and isinstance(f.get("size", 0), (int, float)) and math.isfinite(f.get("size", 0))]
        clean.setdefault("outputBytes", sum(f["size"] for f in clean["outputFiles"]))
    return clean


def report_facts(triggered_id: str, facts: dict, user=None) -> Answer:
    if not isinstance(facts, dict):
        return _refused(400, "facts must be a JSON object.")
    with write_transaction():
        task = locks.lock_task(triggered_id)
        if task is None:
            return _refused(404, f"No task was triggered with id {triggered_id}.")
        refusal = _not_reporter(task, user)
        if refusal is not None:
            return refusal
        task.facts = {**task.facts, **_clean_facts(facts)}
        task.save(update_fields=["facts"])
        run = task.sequence_execution
        announce(run.project.name, run.context)
        return Answer(200, {"triggeredId": task.triggered_id, "facts": task.facts})

