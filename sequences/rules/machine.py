"""The state machine of sequence executions and tasks: every state, every move between states (what causes
it, where it is allowed from, where it leads) and every command a person may give (which move it makes,
and from where). Everything that decides "allowed" reads it: the transitions (sequences/transitions/moves.py
refuses a move the table does not allow), the API's 409 answers, the Bridge's buttons and dialogs, Django
admin's actions and, through the API, the CLI and the SDK. docs/states.md is generated from it.
"""

from dataclasses import dataclass


class Run:
    """The states of a sequence execution."""

    TRIGGERED = "triggered"
    WAITING = "waiting"
    STARTED = "started"
    PAUSED = "paused"
    WAITING_FOR_APPROVAL = "waitingForApproval"
    ABORTING = "aborting"
    FINISHED = "finished"
    ABORTED = "aborted"
    TIMED_OUT = "timedOut"
    SUPERSEDED = "superseded"
    CHOICES = [(TRIGGERED, "triggered"), (WAITING, "waiting"), (STARTED, "started"), (PAUSED, "paused"),
               (WAITING_FOR_APPROVAL, "waiting for approval"), (ABORTING, "aborting"), (FINISHED, "finished"),
               (ABORTED, "aborted"), (TIMED_OUT, "timed out"), (SUPERSEDED, "superseded")]
    TERMINAL = (FINISHED, ABORTED, TIMED_OUT, SUPERSEDED)
    ACTIVE = (WAITING, STARTED, PAUSED, WAITING_FOR_APPROVAL, ABORTING)


class Task:
    """The states of a task execution."""

    SCHEDULED = "scheduled"  # waiting for its triggeredAfter delay
    TRIGGERED = "triggered"
    STARTED = "started"
    FINISHED = "finished"
    ABANDONED = "abandoned"
    KILLING = "killing"
    KILLED = "killed"
    TIMED_OUT = "timedOut"
    CHOICES = [(SCHEDULED, "scheduled"), (TRIGGERED, "triggered"), (STARTED, "started"), (FINISHED, "finished"),
               (ABANDONED, "abandoned"), (KILLING, "killing"), (KILLED, "killed"), (TIMED_OUT, "timed out")]
    OPEN = (TRIGGERED, STARTED)  # an executor may work on it
    UNFINISHED = OPEN + (SCHEDULED,)  # it has not ended: running, or yet to be triggered
    RUNNING = (STARTED, KILLING)  # its job may have processes


@dataclass(frozen=True)
class Move:
    """One move between states: its name, what causes it, the states it leaves and the states it may enter."""

    name: str
    cause: str  # "event", "command", "timer", "policy" or "engine"
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    says: str


R, T = Run, Task
_ALIVE = (R.STARTED, R.PAUSED, R.WAITING_FOR_APPROVAL)  # a run whose tasks go on

RUN_MOVES = {m.name: m for m in (
    Move("wait", "event", (R.TRIGGERED,), (R.WAITING,), "triggered while its lane is held: it waits in the queue"),
    Move("refuse", "event", (R.TRIGGERED,), (R.FINISHED,),
         "its stage or sequence is not in the shipyard: it ends at once, errored, with no lane and no task"),
    Move("start", "event", (R.TRIGGERED, R.WAITING), (R.STARTED,),
         "takes its lane (or needs none) and triggers its first task"),
    Move("await-approval", "event", (R.STARTED,), (R.WAITING_FOR_APPROVAL,),
         "its approval task waits for a person to decide"),
    Move("approval-decided", "command", (R.WAITING_FOR_APPROVAL,), (R.STARTED,),
         "its approval task ended: the sequence goes on"),
    Move("pause", "command", (R.STARTED, R.WAITING), (R.PAUSED,),
         "no further task is triggered (a waiting one keeps its place in the queue)"),
    Move("resume", "command", (R.PAUSED,), (R.STARTED, R.WAITING), "back to where the pause found it"),
    Move("hold", "policy", (R.STARTED,), (R.PAUSED,),
         "a freeze window that holds running sequences is on at its task boundary: no further task until it ends"),
    Move("thaw", "timer", (R.PAUSED,), (R.STARTED,),
         "the freeze window it held under ended (or an operator let it through): its next task is triggered"),
    Move("abort-gracefully", "command", _ALIVE, (R.ABORTING,),
         "no further task; it keeps its lane until the running task ends"),
    Move("abort", "command", R.ACTIVE, (R.ABORTED,), "ends now and lets its lane go; it leaves the queue"),
    Move("finish", "event", _ALIVE, (R.FINISHED,), "its last task ended, or a task failed"),
    Move("time-out", "timer", _ALIVE, (R.TIMED_OUT,), "a task's timer fired"),
    Move("reopen", "command", (R.FINISHED, R.TIMED_OUT), (R.STARTED, R.WAITING),
         "a person retries it from the task it failed or timed out at: a new attempt of that task, with the lane "
         "taken again (or it waits for it)"),
    Move("supersede", "policy", (R.WAITING, R.PAUSED), (R.SUPERSEDED,),
         "a newer execution of its sequence took its turn in the queue"),
)}

TASK_MOVES = {m.name: m for m in (
    Move("schedule", "event", ("",), (T.SCHEDULED,), "created with a triggeredAfter delay"),
    Move("trigger", "event", ("", T.SCHEDULED), (T.TRIGGERED,), "its .triggered is sent to the executors"),
    Move("start", "event", (T.TRIGGERED,), (T.STARTED,), "an executor started it (or claimed it)"),
    Move("finish", "event", T.OPEN, (T.FINISHED,),
         "every executor that started it finished it, or a person finished or decided it"),
    Move("time-out", "timer", T.OPEN, (T.TIMED_OUT,), "no start, no heartbeat or no end in time"),
    Move("kill", "command", T.OPEN + (T.ABANDONED,), (T.KILLING, T.KILLED),
         "its processes are to be killed (killed at once when no executor ever started it)"),
    Move("abandon", "command", T.UNFINISHED, (T.ABANDONED, T.KILLING, T.KILLED),
         "its sequence was aborted by force; its late events are fenced off"),
    Move("confirm-killed", "event", (T.KILLING,), (T.KILLED,), "an executor confirmed it killed the processes"),
    Move("kill-unconfirmed", "timer", (T.KILLING,), (T.KILLED,),
         "no executor confirmed the kill in time: it is taken as killed"),
)}


@dataclass(frozen=True)
class Command:
    """What a person may ask: which states it applies to (of the sequence, or of the task and its sequence)."""

    name: str
    target: str  # "sequence" or "task"
    moves: tuple[str, ...]
    run_states: tuple[str, ...]  # the sequence's states it applies to
    task_states: tuple[str, ...] = ()  # for a task command: the task's states it applies to
    done: str = ""  # "paused": for "cannot be paused"
    label: str = ""
    approval: bool | None = None  # task commands: only on an approval waiting for a decision (True), never (False)


COMMANDS = {c.name: c for c in (
    Command("pause", "sequence", ("pause",), (R.STARTED, R.WAITING), done="paused", label="Pause"),
    Command("resume", "sequence", ("resume",), (R.PAUSED,), done="resumed", label="Resume"),
    Command("abort:graceful", "sequence", ("abort-gracefully", "abort"), _ALIVE + (R.WAITING,),
            done="aborted (graceful)", label="Abort gracefully"),
    Command("abort:force", "sequence", ("abort",), R.ACTIVE, done="aborted (force)", label="Abort by force"),
    # kill also reaches an aborted sequence whose task a force abort abandoned while an executor ran it
    Command("abort:kill", "sequence", ("abort", "kill"), R.ACTIVE + (R.ABORTED,), done="aborted (kill)",
            label="Kill"),
    # a new execution of an ended sequence, in its stage, with the same input (it queues like any other)
    Command("retrigger", "sequence", ("start", "wait"), R.TERMINAL, done="re-run", label="Re-run"),
    # through a freeze window: a sequence waiting in a frozen lane, or holding under a window at a task boundary
    Command("let-through", "sequence", ("start", "thaw"), (R.WAITING, R.PAUSED), done="let through",
            label="Let through"),
    Command("finish", "task", ("finish",), _ALIVE + (R.ABORTING,), T.OPEN, done="force-finished",
            label="Force-finish", approval=False),
    Command("kill", "task", ("kill",), _ALIVE + (R.ABORTING,), T.OPEN, done="killed", label="Kill",
            approval=False),
    # in place: the task a sequence failed or timed out at runs again, and the sequence goes on from there
    Command("retry", "task", ("reopen",), (R.FINISHED, R.TIMED_OUT), (T.FINISHED, T.TIMED_OUT, T.KILLED),
            done="retried", label="Retry from here"),
    Command("approve", "task", ("finish", "approval-decided"), (R.WAITING_FOR_APPROVAL,), T.OPEN,
            done="approved", label="Approve", approval=True),
    Command("decline", "task", ("finish", "approval-decided"), (R.WAITING_FOR_APPROVAL,), T.OPEN,
            done="declined", label="Decline", approval=True),
)}

SEQUENCE_COMMANDS = tuple(c for c in COMMANDS.values() if c.target == "sequence")
TASK_COMMANDS = tuple(c for c in COMMANDS.values() if c.target == "task")


def may_move(table: dict, name: str, state: str) -> bool:
    return state in table[name].sources


def run_allows(command: str, state: str, *, abandoned_with_executor: bool = False, refused: bool = False,
               frozen: bool = False) -> bool:
    """Whether a sequence command applies to a run in `state`. Kill on an aborted run applies only while a
    task it abandoned may still have processes (an executor had started it and no kill was asked yet). A
    trigger that was refused (no such stage or sequence: it never had a task) is not re-run. `frozen`: it
    waits in a frozen lane, or holds under a freeze window (paused by the window, not by a person); only
    such a run is let through, and one a window holds is let through rather than resumed."""
    spec = COMMANDS[command]
    if state not in spec.run_states or (refused and command == "retrigger"):
        return False
    if command == "let-through":
        return frozen
    if command == "resume" and frozen:
        return False
    if state == R.ABORTED and command == "abort:kill":
        return abandoned_with_executor
    if command == "abort:graceful" and state == R.ABORTING:
        return False
    return True


def awaits_decision(task_name: str, run_state: str) -> bool:
    """A manual approval that waits for people: no executor takes it, a person approves or declines it."""
    return task_name == "approval" and run_state == R.WAITING_FOR_APPROVAL


def task_allows(command: str, task_state: str, run_state: str, task_name: str, failed_here: bool = False) -> bool:
    """Whether a task command applies to a task in `task_state` of a run in `run_state`. A manual approval
    that waits for a person is approved or declined; any other open task is force-finished or killed; the
    task an ended sequence failed or timed out at (`failed_here`: its last, and the sequence failed) is retried."""
    spec = COMMANDS[command]
    if command == "retry":
        return failed_here and task_state in spec.task_states and run_state in spec.run_states
    awaiting_decision = awaits_decision(task_name, run_state)
    return (task_state in spec.task_states and run_state in spec.run_states
            and awaiting_decision == bool(spec.approval))


def run_commands(state: str, *, abandoned_with_executor: bool = False, refused: bool = False,
                 frozen: bool = False) -> list[str]:
    return [c.name for c in SEQUENCE_COMMANDS if run_allows(
        c.name, state, abandoned_with_executor=abandoned_with_executor, refused=refused, frozen=frozen)]


def task_commands(task_state: str, run_state: str, task_name: str, failed_here: bool = False) -> list[str]:
    return [c.name for c in TASK_COMMANDS if task_allows(c.name, task_state, run_state, task_name, failed_here)]


def failed_at_its_end(run_state: str, run_result: str) -> bool:
    """An ended sequence that failed (or timed out) at its last task: that task may be retried in place."""
    return run_state in (R.FINISHED, R.TIMED_OUT) and run_result == "fail"


def refusal(command: str, subject: str, state: str, whole: bool = False) -> str:
    """The words of a 409: what cannot be done, and why (the state it is in). `whole`: the subject is a
    context or stage, none of whose sequences the command applies to."""
    done = COMMANDS[command].done
    if whole:
        return f"Nothing in {subject} can be {done}: it is {state}."
    return f"{subject} is {state}; it cannot be {done}."
