"""Every kind of timer a task has, declared once: the field that holds its moment, the task state it counts in
(each kind has a partial index on that field for that state), what arms and clears it, what happens when
it fires, and how the API and the Bridge show it. The model's indexes, the engine's queries
(sequences/transitions/timeouts.py), the arming (sequences/transitions/deadlines.py), the API's `timeouts`
and the Bridge's countdowns all read this table: a new kind is one entry here and a migration for its index.

The one timer that is not a task's is a freeze window's end (FreezeWindow.next_end, with its own partial
index): sequences/transitions/holds.py fires it, and the engine sleeps no longer than the next one.
"""

from dataclasses import dataclass

from sequences.rules.machine import Run, Task


@dataclass(frozen=True)
class Timer:
    kind: str
    field: str  # the TaskExecution field that holds the moment it fires
    state: str  # the task state it counts in (the condition of its partial index)
    index: str  # the name of that index
    fires: str  # what the engine does: "trigger" the task, "time-out" the task, take a kill as "killed"
    api: str  # its key in the API's `currentTask.timeouts`
    armed: str  # when it is set, in words (docs/states.md)
    before: str = ""  # the Bridge's countdown: "<before> 9m 59s <after>"; empty: not shown
    after: str = ""
    run_state: str = ""  # it counts only while the task's sequence is in this state ("" : always)


TIMERS = (
    Timer("start", "start_deadline", Task.TRIGGERED, "task_start_deadline", "time-out", "startDeadline",
          "when the task is triggered: the shipyard's startTimeout, else BOSUN_TASK_START_TIMEOUT (none for a "
          "manual approval)", "times out in", "unless an executor starts it"),
    Timer("total", "deadline", Task.STARTED, "task_deadline", "time-out", "deadline",
          "when an executor starts the task: the shipyard's timeout", "times out in"),
    Timer("heartbeat", "heartbeat_deadline", Task.STARTED, "task_heartbeat", "time-out", "heartbeatDeadline",
          "when an executor starts the task, and again at each heartbeat: the shipyard's heartbeatTimeout, "
          "else the claiming executor's", "expects a heartbeat within"),
    Timer("triggeredAfter", "due_at", Task.SCHEDULED, "task_due", "trigger", "dueAt",
          "when the task is created with a triggeredAfter delay (it waits while its sequence is paused)",
          "is triggered in", run_state=Run.STARTED),
    Timer("kill", "deadline", Task.KILLING, "task_kill_deadline", "killed", "deadline",
          "when a kill is asked of an executor: its kill grace (else BOSUN_KILL_GRACE) plus a margin"),
)

FIELDS = list(dict.fromkeys(t.field for t in TIMERS))  # every field a timer uses; cleared when a task ends
API_KEYS = {t.field: t.api for t in TIMERS}
CLEARED = "when the task ends, every timer of it is cleared"


def of_state(task_state: str) -> list[Timer]:
    """The timers that count for a task in `task_state`."""
    return [t for t in TIMERS if t.state == task_state]
