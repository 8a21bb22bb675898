"""Where a state is assigned, and where an audit row is written: each a single function.

`enter()` moves a sequence execution or a task to a new state if sequences/rules/machine.py allows that
move from the state it is in, and raises IllegalMove otherwise (a bug: the callers check first and answer
409 to a person). `audit()` writes the audit trail's row for a command, a timer or a queue policy.
"""

from sequences.models import ControlAction, SequenceExecution, TaskExecution
from sequences.rules.machine import RUN_MOVES, TASK_MOVES
from sequences.store.prepared import save


class IllegalMove(Exception):
    """A transition the state machine does not allow: the caller skipped its check."""


def enter(obj, move: str, state: str | None = None) -> str:
    """Move `obj` (a sequence execution or a task) by `move` into `state` (the move's only target when
    omitted); returns the state it left. A task not yet saved leaves no state ("")."""
    table = RUN_MOVES if isinstance(obj, SequenceExecution) else TASK_MOVES
    spec = table[move]
    before = obj.state if obj.pk is not None or table is RUN_MOVES else ""
    state = state or spec.targets[0]
    if before not in spec.sources or state not in spec.targets:
        kind = "sequence execution" if table is RUN_MOVES else "task"
        raise IllegalMove(f"A {kind} in state {before or '(new)'!r} cannot {move} into {state!r}.")
    obj.state = state
    return before


def audit(run, command: str, *, actor: str, source: str, reason: str = "", before: str = "", after: str = "",
          task: TaskExecution | None = None, response: dict | None = None, idempotency_key: str = "",
          request_digest: str = "", project: str = "", context: str = "") -> ControlAction:
    """The audit trail's row: who did what to which sequence (and task), from where, why, and what changed.
    A project's own change (a freeze window made or deleted) has no sequence: `run` is None, `project` given."""
    row = ControlAction(
        sequence_execution=run, task_execution=task, project=project or run.project.name,
        context=context or (run.context if run is not None else ""), command=command, actor=actor, source=source, reason=reason,
        state_before=before, state_after=after, idempotency_key=idempotency_key, request_digest=request_digest,
        response=response or {})
    save(row)
    return row
