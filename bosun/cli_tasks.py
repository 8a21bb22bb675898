"""`bosun task ...`, `bosun approve` and `bosun decline`: look at and control one task, by its triggered id."""

import time

import typer
from rich.table import Table

from .cli_util import OUTPUT, client, confirm, emit, errors, out

task_app = typer.Typer(help="Look at and control one task (by its triggered id).", no_args_is_help=True)


@task_app.command("finish")
def task_finish(triggered_id: str, result: str = typer.Option(..., help="pass, warning or fail"),
                status: str = typer.Option("succeeded", help="succeeded, errored, aborted or unknown"),
                reason: str = typer.Option(..., help="Why it is finished by hand"),
                yes: bool = typer.Option(False, "--yes", "-y")):
    """Finish a task by hand; later events of its executors are fenced off."""
    with errors():
        task = client().task(triggered_id)
        confirm(f"finish ({result}, {status})", [f"{task.name} {triggered_id}"], yes)
        answer = task.finish(result, status, reason)
    print(f"Task {answer['task']} {triggered_id} is {answer['state']} ({answer['result']}); "
          f"its sequence is {answer['sequenceState']}.")


@task_app.command("kill")
def task_kill(triggered_ids: list[str], reason: str = typer.Option("", help="Why"),
              yes: bool = typer.Option(False, "--yes", "-y")):
    """Kill tasks: each ends failed now and its executor terminates its processes."""
    with errors():
        api = client()
        tasks = [api.task(t) for t in triggered_ids]
        confirm("kill", [f"{t.name} {t.triggered_id}" for t in tasks], yes)
        for task in tasks:
            task.kill(reason)
            print(f"Successfully sent kill request for task {task.triggered_id}.")


@task_app.command("retry")
def task_retry(triggered_id: str, reason: str = typer.Option("", help="Why (kept in the audit trail)")):
    """Retry from here: the task an ended sequence failed at runs again, and the sequence goes on from it."""
    with errors():
        answer = client().task(triggered_id).retry(reason)
    if answer["triggeredId"]:
        print(f"Retrying {answer['task']} in {answer['stage']}: attempt {answer['attempt']}, triggered id "
              f"{answer['triggeredId']}.")
    else:
        print(f"Retrying {answer['task']} in {answer['stage']}: the sequence waits for its lane; the new attempt "
              "starts when it gets it.")


@task_app.command("status")
def task_status(triggered_id: str):
    """A task's state."""
    with errors():
        print(client().task(triggered_id).get_status())


@task_app.command("info")
def task_info(triggered_id: str, output: str = OUTPUT):
    """A task's state, result and facts: machine, computation time, exit code, output files."""
    with errors():
        task = client().task(triggered_id)
        info = task.info()
    if output != "table":
        emit(info, output)
        return
    facts = info.get("facts") or {}
    table = Table(show_header=False, title=f"task {info['task']} {triggered_id}", title_justify="left")
    rows = [("state", info["state"]), ("result", f"{info['result']} {info['status']}".strip()),
            ("message", info.get("message") or ""), ("context", info.get("keptnContext") or ""),
            ("stage / service", f"{info.get('stage')} / {info.get('service')}"),
            ("executor", info.get("claimedBy") or ""), ("machine", task.get_machine_type() or ""),
            ("computation time", task.get_computation_time() or ""),
            ("exit code", "" if facts.get("exitCode") is None else str(facts["exitCode"]))]
    for key, value in rows:
        table.add_row(key, value)
    out.print(table)
    files = task.get_output_files_info()
    if len(files):
        print(files)


@task_app.command("logs")
def task_logs(triggered_id: str, follow_: bool = typer.Option(False, "--follow", "-f", help="Keep printing new output")):
    """A task's log; --follow prints new output until the task ends."""
    with errors():
        task = client().task(triggered_id)
        shown = task.logs()
        print(shown, end="", flush=True)
        while follow_ and task.get_status() in ("triggered", "started", "killing"):
            time.sleep(0.5)
            text = task.logs()
            if text.startswith(shown):
                print(text[len(shown):], end="", flush=True)
            shown = text
        if follow_:
            print(task.logs()[len(shown):], end="", flush=True)


def approve(triggered_id: str, reason: str = typer.Option("")):
    """Approve a manual approval task."""
    with errors():
        answer = client().task(triggered_id).approve(reason)
    rule = answer.get("approvals") or {}
    if rule.get("needed"):  # an approval rule asks for more people
        print(f"Approved ({len(rule['given'])} of {rule['required']}); the sequence is {answer['sequenceState']}. "
              f"Still needed: {rule['words']}.")
    else:
        print(f"Approved; the sequence is {answer['sequenceState']}.")


def decline(triggered_id: str, reason: str = typer.Option(..., help="Why (required)")):
    """Decline a manual approval task: the sequence fails."""
    with errors():
        answer = client().task(triggered_id).decline(reason)
    print(f"Declined; the sequence is {answer['sequenceState']}.")
