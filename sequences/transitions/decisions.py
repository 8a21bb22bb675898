"""A person's decision on a manual approval task: approve or decline, under the task's approval rule
(sequences/rules/approvals.py). Idempotent and audited as every command (sequences/transitions/commands.py)."""

from django.contrib.auth.models import Group
from django.utils import timezone

from sequences.models import Event, SequenceExecution as SE, TaskExecution as TE
from sequences.rules import approvals
from sequences.rules import cloudevents as ev
from sequences.store.db import announce
from sequences.store.prepared import save
from sequences.transitions import flow
from sequences.transitions.commands import Actor, Outcome, Refused, run_command, task_audit, task_body, task_work


def triggered_by(run) -> str:
    """The person who triggered the context `run` is in (its first sequence's trigger)."""
    root = SE.objects.filter(context=run.context, project_id=run.project_id, root=True).order_by("id").first()
    sender = Event.objects.filter(event_id=(root or run).triggered_id, type__endswith=".triggered").values_list(
        "sent_by", flat=True).first()
    return approvals.person(sender or "")


def decide_approval(triggered_id: str, approve: bool, reason: str, *, actor: Actor,
                    idempotency_key: str = "") -> Outcome:
    """Approve or decline a manual approval task; a decline needs a reason and fails the sequence. Under an
    approval rule (sequences/rules/approvals.py) the task passes once enough distinct people approved."""
    if not approve and not (reason or "").strip():
        return Outcome(400, {"code": 400, "message": "reason is required to decline."})

    def work():
        task, run = task_work(triggered_id, "approve" if approve else "decline")
        before = task.state
        now = timezone.now()
        rule = approvals.rule_of(run.task_spec(task.index))
        who = approvals.person(actor.name)
        starter = triggered_by(run)
        groups = set(Group.objects.filter(user__username=who).values_list("name", flat=True)) \
            if rule["group"] else set()
        refused = approvals.refusal(rule, task.approvals, who, groups, starter, approve)
        if refused is not None:
            raise Refused(refused.code, refused.message, state=task.state)
        if approve:
            task.approvals = [*task.approvals, {"by": who, "at": ev.now_iso(now), "reason": reason}]
            if approvals.still_needed(rule, task.approvals):
                save(task, ["approvals"])
                announce(run.project.name, run.context)
                body = {**task_body(task, run), "approvals": approvals.shown(rule, task.approvals, starter)}
                return Outcome(200, body), task_audit(task, run, before)
        result = "pass" if approve else "fail"
        names = " and ".join(entry["by"] for entry in task.approvals) if approve and rule["required"] > 1 \
            else actor.name
        message = f"{'Approved' if approve else 'Declined'} by {names}" + (f": {reason}" if reason else ".")
        task.finished_by = actor.name
        task.executors = {actor.name: {"started": ev.now_iso(now), "finished": ev.now_iso(now), "result": result,
                                       "status": "succeeded", "message": message}}
        flow.finish_task(task, run, "finish", TE.FINISHED, result, "succeeded", message, now)
        announce(run.project.name, run.context)
        run.refresh_from_db()
        body = {**task_body(task, run), "approvals": approvals.shown(rule, task.approvals, starter)}
        return Outcome(200, body), task_audit(task, run, before)

    return run_command("approve" if approve else "decline", actor, idempotency_key, reason, work, {"task": triggered_id})
