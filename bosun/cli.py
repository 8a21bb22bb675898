"""The `bosun` command line: trigger, follow, inspect and control sequences and tasks; run a job executor.

Exit codes: 0 done; 1 a followed sequence did not pass (fail, aborted, timed out); 2 bad usage or no
configuration; 3 Bosun cannot be reached; 4 the token was refused or lacks the permission; 5 not found;
6 Bosun refused the request (e.g. 409: it does not apply now); 7 not confirmed; 130 interrupted.
"""

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

import typer
from rich.table import Table

from . import config
from .cli_freezes import freeze_app, get_freezes
from .cli_tasks import approve, decline, task_app
from .cli_util import EXIT_FAILED, EXIT_USAGE, OUTPUT, client, confirm, emit, err, errors, fitted, out, pairs, short
from .client import BosunError
from .client import answer as read
from .sdk import RESULTS, TERMINAL, Client, Sequence, queue_words

app = typer.Typer(help="Bosun from the command line. Exit codes: 0 done, 1 the followed sequence did not pass, "
                       "2 usage/configuration, 3 unreachable, 4 token refused, 5 not found, 6 refused, "
                       "7 not confirmed.", no_args_is_help=True, add_completion=False)
trigger_app = typer.Typer(help="Trigger a delivery or any sequence.", no_args_is_help=True)
get_app = typer.Typer(help="Read sequences, events and what blocks a lane.", no_args_is_help=True)
send_app = typer.Typer(help="Send events.", no_args_is_help=True)
pause_app = typer.Typer(help="Pause a sequence.", no_args_is_help=True)
resume_app = typer.Typer(help="Resume a sequence.", no_args_is_help=True)
abort_app = typer.Typer(help="Abort a sequence.", no_args_is_help=True)
for sub, name in ((trigger_app, "trigger"), (get_app, "get"), (send_app, "send"), (task_app, "task"),
                  (pause_app, "pause"), (resume_app, "resume"), (abort_app, "abort"), (freeze_app, "freeze")):
    app.add_typer(sub, name=name)


# --- configuration and the executor -------------------------------------------------------------


TOKEN_IN_ARGV = ("Note: a token given with --token is visible to other users in the process list; prefer "
                 "BOSUN_TOKEN, BOSUN_TOKEN_FILE or (for bosun auth) the prompt.")


@app.command()
def auth(url: str = typer.Option(..., help="Bosun's address, e.g. http://127.0.0.1:8000"),
         token: str = typer.Option(None, help="An API token; better from BOSUN_TOKEN, BOSUN_TOKEN_FILE or the "
                                              "prompt (arguments show in the process list)")):
    """Check the address and token, and save them for later commands (mode 0600)."""
    if token:
        err.print(TOKEN_IN_ARGV, style="yellow", highlight=False)
    with errors():
        if not token and os.environ.get("BOSUN_TOKEN_FILE"):
            token = config.token_file(os.environ["BOSUN_TOKEN_FILE"])
        token = token or os.environ.get("BOSUN_TOKEN") or ""
    if not token:
        if not sys.stdin.isatty():
            token = sys.stdin.readline().strip()
        else:
            token = typer.prompt("API token", hide_input=True).strip()
    if not token:
        err.print("[red]Error:[/] no token given (BOSUN_TOKEN, BOSUN_TOKEN_FILE, or type it at the prompt).")
        raise typer.Exit(EXIT_USAGE)
    with errors():
        projects = Client(url, token).project_names()
        path = config.save(url, token)
    print(f"Bosun at {url.rstrip('/')} accepted the token ({len(projects)} project(s)). Saved to {path}.")


@app.command()
def executor(
    url: str = typer.Option(None, help="Bosun's address (or BOSUN_URL, or bosun auth)"),
    token: str = typer.Option(None, help="An API token of a user who may operate sequences; better from "
                                         "BOSUN_TOKEN or BOSUN_TOKEN_FILE (arguments show in the process list)"),
    project: list[str] = typer.Option([], "--project", "-p", help="Only this project's jobs (repeatable)"),
    concurrency: int = typer.Option(2, min=1, max=64, help="Jobs run at the same time"),
    name: str = typer.Option(None, help="The executor's name in events (default bosun-executor/<host>/<pid>)"),
    work_dir: str = typer.Option(None, help="Where each job gets its folder (default: a new temporary folder; "
                                            "the job user must be able to reach it)"),
    job_user: str = typer.Option(None, envvar="BOSUN_JOB_USER",
                                 help="The OS user jobs run as (default: nobody when run as root, else your own; "
                                      "'' for your own)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log more"),
):
    """Run the jobs of projects' job definitions for the tasks Bosun triggers, until stopped."""
    from .executor import Executor

    if token:
        err.print(TOKEN_IN_ARGV, style="yellow", highlight=False)
    with errors():
        url, token = config.resolve(url, token)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        runner = Executor(url, token, projects=project, concurrency=concurrency, name=name, work_dir=work_dir,
                          job_user=job_user)
    except (ValueError, OSError) as exc:
        err.print(f"[red]Error:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    signal.signal(signal.SIGTERM, runner.stop)
    signal.signal(signal.SIGINT, runner.stop)
    runner.run()


# --- triggering -----------------------------------------------------------------------------------


def follow(run: Sequence) -> int:
    """Print each change of the context until nothing runs; the exit code says whether it passed."""
    seen: dict[str, str] = {}
    while True:
        runs = run.executions()
        for execution in runs:
            where = f"{execution['scope']['stage']} {execution['sequence']['name']}"
            status = execution["status"]
            line = short(execution) + (f" · {status['currentTask']['name']} {status['currentTask']['state']}"
                                       if status["currentTask"] else "")
            if execution["status"]["state"] == "waiting" and execution.get("queue"):
                line += f" · queued {queue_words(execution['queue'])}"
            if seen.get(execution["_id"]) != line:
                seen[execution["_id"]] = line
                print(f"{time.strftime('%H:%M:%S')}  {where}: {line}", flush=True)
        if runs and all(r["status"]["state"] in TERMINAL for r in runs):
            shown = run.outcome()
            result = RESULTS.get(shown["key"], "fail")
            print(f"Outcome: {result}" + (" (rolled back)" if "rolled back" in shown["label"] else ""))
            return 0 if result in ("pass", "warning") else EXIT_FAILED
        time.sleep(0.5)


def triggered(run: Sequence, watch: bool):
    print(f"ID of context: {run.context}")
    if run.message:  # accepted, but it could not run
        err.print(f"[red]It ended at once:[/] {run.message}", highlight=False)
        raise typer.Exit(EXIT_FAILED)
    if watch:
        with errors(), run.sync_context():
            raise typer.Exit(follow(run))


@trigger_app.command("delivery")
def trigger_delivery(project: str = typer.Option(...), service: str = typer.Option(...),
                     image: str = typer.Option(..., help="e.g. docker.io/keptnexamples/carts"),
                     tag: str = typer.Option(None, help="e.g. 0.11.1 (or end the image with :0.11.1)"),
                     stage: str = typer.Option(None, help="Default: the project's first stage"),
                     sequence: str = typer.Option("delivery"),
                     label: list[str] = typer.Option([], "--label", "-l", help="k=v (repeatable)"),
                     watch: bool = typer.Option(False, "--watch", help="Follow it until it ends (exit 1 unless it passed)")):
    """Deliver a new version of a service."""
    with errors():
        run = client().trigger_delivery(project, service, image, tag, stage, sequence, pairs(label, "label") or None)
    triggered(run, watch)


@trigger_app.command("sequence")
def trigger_sequence(name: str = typer.Argument(None, help="The sequence (with --context: which one to re-run)"),
                     project: str = typer.Option(None), stage: str = typer.Option(...),
                     service: str = typer.Option(None),
                     label: list[str] = typer.Option([], "--label", "-l", help="k=v (repeatable)"),
                     data: list[str] = typer.Option([], "--data", "-d", help="a.b=c into the event's data"),
                     context: str = typer.Option(None, "--context", help="Re-run this context's ended sequence "
                                                 "of the stage, with the same input"),
                     new_context: bool = typer.Option(False, "--new-context", help="With --context: re-run it "
                                                      "in a new context (a whole delivery from its first stage)"),
                     reason: str = typer.Option("", help="With --context: why (kept in the audit trail)"),
                     watch: bool = typer.Option(False, "--watch")):
    """Trigger any sequence of a stage, or (--context) run an ended one again."""
    if context:
        with errors():
            run = client().sequence(context, project).rerun(stage, name, new_context, reason)
        answer = run.rerun_answer
        where = "" if answer["keptnContext"] == context else " in a new context"
        print(f"Re-run of {answer['sequence']} ({answer['service']}) in {answer['stage']}{where}: "
              f"{answer['state']}.")
        triggered(run, watch)
        return
    missing = [flag for flag, value in (("NAME", name), ("--project", project), ("--service", service))
               if not value]
    if missing:
        err.print(f"[red]Missing {', '.join(missing)}:[/] a new trigger needs the sequence's name, --project "
                  "and --service (or --context C to re-run an ended one).", highlight=False)
        raise typer.Exit(2)
    with errors():
        run = client().trigger_sequence(name, project, stage, service, pairs(label, "label") or None,
                                        pairs(data, "data"))
    triggered(run, watch)


@send_app.command("event")
def send_event(file: Path = typer.Option(..., "--file", "-f", exists=True, dir_okay=False, help="A CloudEvent as JSON")):
    """Send a CloudEvent from a file (a sequence's .triggered, or a task's .started/.finished)."""
    try:
        event = json.loads(file.read_text())
    except ValueError as exc:
        err.print(f"[red]Error:[/] {file} is not JSON: {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    with errors():
        answer = read(client().send_event(event))
    print(f"ID of context: {answer.get('keptnContext')}" + ("  (a duplicate: not applied again)"
                                                           if answer.get("duplicate") else ""))


# --- reading --------------------------------------------------------------------------------------


def executions_table(runs: list[dict], title: str) -> Table:
    rows = []
    for run in runs:
        queue = run.get("queue") or {}
        task = run["status"]["currentTask"]
        rows.append([run["scope"]["keptnContext"], f"{run['scope']['stage']}/{run['scope']['service']}",
                     run["sequence"]["name"], short(run), f"{task['name']}: {task['state']}" if task else "",
                     queue_words(queue) if queue.get("position") else
                     (queue.get("policy") or "") if queue.get("policy") not in (None, "fifo") else ""])
    return fitted(title, ["context", "lane", "sequence", "state", "task", "queue"], rows,
                  shorten=lambda context: context[:8])


@get_app.command("sequences")
def get_sequences(project: str = typer.Option(...), stage: str = typer.Option(None),
                  service: str = typer.Option(None), status: str = typer.Option(None), name: str = typer.Option(None),
                  output: str = OUTPUT):
    """Sequence executions of a project, newest first, with queue position and blocker."""
    with errors():
        runs = client().sequences(project, stage, service, status, name)
    emit(runs, output, executions_table(runs, f"{project}: {len(runs)} sequence execution(s)"))


@get_app.command("sequence")
def get_sequence(context: str, project: str = typer.Option(None), output: str = OUTPUT):
    """One context: its executions in every stage and their tasks."""
    with errors():
        run = client().sequence(context, project)
        runs = run.executions()
        if not runs:
            raise BosunError(404, f"No sequence has context {context}.")
    table = executions_table(runs, f"context {context} ({run.project})")
    emit(runs, output, table)


@get_app.command("events")
def get_events(context: str = typer.Option(..., "--context", "--keptn-context", help="The context (shkeptncontext)"), type: str = typer.Option(None), output: str = OUTPUT):
    """The event log of a context, oldest first."""
    with errors():
        events = client().events(context, type)
    rows = [[event.get("time") or "", event["type"].removeprefix("sh.keptn.event."), event.get("source") or "",
             event["id"]] for event in events]
    emit(events, output, fitted(f"{len(events)} event(s) of {context}", ["time", "type", "source", "id"], rows))


@get_app.command("blocking")
def get_blocking(project: str = typer.Option(...), stage: str = typer.Option(...), service: str = typer.Option(...),
                 output: str = OUTPUT):
    """The sequence that holds a lane (what the others wait behind)."""
    with errors():
        holder = client().blocking(project, stage, service)
    if holder is None:
        emit(None, output) if output != "table" else print(f"Nothing holds {stage}/{service}: the lane is free.")
        return
    emit(holder, output, executions_table([holder], f"{stage}/{service} is held by"))


# --- control --------------------------------------------------------------------------------------


@pause_app.command("sequence")
def pause_sequence(context: str = typer.Option(..., "--context", "--keptn-context", help="The context (shkeptncontext)"), stage: str = typer.Option(None),
                   suspend_running: bool = typer.Option(False, help="Also stop the running job's processes")):
    """Pause: the running task goes on, the next one waits for the resume."""
    with errors():
        client().sequence(context).pause(stage, suspend_running)
    print("The current sequence execution is paused.")
    print(f"To resume the sequence execution, execute: bosun resume sequence --context={context}"
          + (f" --stage={stage}" if stage else ""))


@resume_app.command("sequence")
def resume_sequence(context: str = typer.Option(..., "--context", "--keptn-context", help="The context (shkeptncontext)"), stage: str = typer.Option(None)):
    """Resume: what the pause held back is triggered at once."""
    with errors():
        client().sequence(context).resume(stage)
    print("The sequence execution resumes.")


@abort_app.command("sequence")
def abort_sequence(context: str = typer.Option(..., "--context", "--keptn-context", help="The context (shkeptncontext)"), stage: str = typer.Option(None),
                   force: bool = typer.Option(False, "--force", help="Aborted now; the lane is released now"),
                   kill: bool = typer.Option(False, "--kill", help="As --force, and the running job's processes are killed"),
                   reason: str = typer.Option("", help="Why (kept in the audit trail)"),
                   yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask")):
    """Abort: graceful by default (the running task may end), --force or --kill."""
    mode = "kill" if kill else "force" if force else "graceful"
    with errors():
        run = client().sequence(context)
        # what the abort applies to: the executions whose allowed commands (Bosun's state machine) include it
        active = [r for r in run.executions() if f"abort:{mode}" in r.get("commands", [])
                  and (not stage or r["scope"]["stage"] == stage)]
        items = [f"{r['scope']['stage']} {r['sequence']['name']} of {r['scope']['service']} ({short(r)})"
                 for r in active] or [f"context {context}"]
        confirm(f"abort ({mode})", items, yes)
        answer = run.abort(mode, stage, reason)
    print("The sequence execution is aborted." if answer["state"] == "aborted" else
          f"The sequence execution is {answer['state']}: it ends when its running task does.")
    if answer.get("warning"):
        err.print(f"[yellow]Warning:[/] {answer['warning']}", highlight=False)


# --- tasks (cli_tasks.py) and freeze windows (cli_freezes.py) --------------------------------------

app.command()(approve)
app.command()(decline)
get_app.command("freezes")(get_freezes)


@app.command()
def watch(project: str = typer.Option(...), once: bool = typer.Option(False, help="Print the view once and exit")):
    """A live view of a project's running and waiting sequences (updated on every change)."""
    from .watch import watch_project

    with errors():
        watch_project(client(), project, once=once, console=out)


def main():
    app()


if __name__ == "__main__":
    main()
