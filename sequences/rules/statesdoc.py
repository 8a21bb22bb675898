"""docs/states.md, written from the state machine and the timer registry: `python -m sequences.rules.statesdoc >
docs/states.md`. A test fails when the file in the repository is not what this prints."""

from sequences.rules.machine import COMMANDS, RUN_MOVES, TASK_MOVES, Run, Task
from sequences.rules.timers import CLEARED, TIMERS


def _states(names) -> str:
    return ", ".join(f"`{n}`" if n else "(new)" for n in names)


def _moves(table) -> list[str]:
    rows = ["| move | caused by | from | to | what happens |", "| --- | --- | --- | --- | --- |"]
    rows += [f"| `{m.name}` | {m.cause} | {_states(m.sources)} | {_states(m.targets)} | {m.says} |"
             for m in table.values()]
    return rows


def _diagram(table, ends, initial="") -> list[str]:
    lines = ["```mermaid", "stateDiagram-v2"] + ([f"    [*] --> {initial}"] if initial else [])
    for m in table.values():
        for source in m.sources:
            for target in m.targets:
                lines.append(f"    {source or '[*]'} --> {target}: {m.name}")
    lines += [f"    {s} --> [*]" for s in ends]
    return lines + ["```"]


def markdown() -> str:
    lines = [
        "# States of sequences and tasks",
        "",
        "Generated from `sequences/rules/machine.py` and `sequences/rules/timers.py` by",
        "`python -m sequences.rules.statesdoc > docs/states.md`; a test fails when this file is stale.",
        "",
        "## Sequence executions",
        "",
        f"States: {_states(s for s, _ in Run.CHOICES)}. Ended: {_states(Run.TERMINAL)}.",
        "",
        *_diagram(RUN_MOVES, Run.TERMINAL, Run.TRIGGERED),
        "",
        *_moves(RUN_MOVES),
        "",
        "## Tasks",
        "",
        f"States: {_states(s for s, _ in Task.CHOICES)}. Open (an executor may work on it): {_states(Task.OPEN)}.",
        "",
        *_diagram(TASK_MOVES, (Task.FINISHED, Task.TIMED_OUT, Task.KILLED, Task.ABANDONED)),
        "",
        *_moves(TASK_MOVES),
        "",
        "## Commands",
        "",
        "What a person may ask, from the Bridge, the API, the CLI, the SDK or Django admin. Where a command does",
        "not apply, the Bridge offers no button for it and the API answers 409 with the state.",
        "",
        "| command | on | the sequence is | the task is | moves |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c in COMMANDS.values():
        task = _states(c.task_states) if c.task_states else ""
        if c.approval:
            task += " (an approval waiting for a decision)"
        elif c.approval is False:
            task += " (not an approval waiting for a decision)"
        lines.append(f"| `{c.name}` | {c.target} | {_states(c.run_states)} | {task} | "
                     f"{', '.join(f'`{m}`' for m in c.moves)} |")
    lines += [
        "",
        "`abort:kill` on an `aborted` sequence applies only while a task a force abort abandoned may still have",
        "processes (an executor had started it and no kill was asked yet).",
        "",
        "## Timers",
        "",
        f"Each kind counts while its task is in one state, and has a partial index on its field; {CLEARED}.",
        "",
        "| timer | field | counts while the task is | when it fires | armed |",
        "| --- | --- | --- | --- | --- |",
    ]
    fires = {"time-out": "the task times out (`time-out`)", "trigger": "the task is triggered (`trigger`)",
             "killed": "the task is taken as killed (`kill-unconfirmed`)"}
    for t in TIMERS:
        state = f"`{t.state}`" + (f" and its sequence `{t.run_state}`" if t.run_state else "")
        lines.append(f"| {t.kind} | `{t.field}` | {state} | {fires[t.fires]} | {t.armed} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
