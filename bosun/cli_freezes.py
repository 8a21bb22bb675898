"""`bosun freeze ...` and `bosun get freezes`: a project's freeze windows."""

import typer
from rich.table import Table

from .cli_util import OUTPUT, client, emit, errors, fitted

freeze_app = typer.Typer(help="Freeze windows: while one is on, its lanes start nothing.", no_args_is_help=True)


def freezes_table(windows: list[dict], title: str) -> Table:
    rows = []
    for w in windows:
        when = (f"every '{w['cron']}' for {w['duration']} ({w['timeZone']})" if w["cron"]
                else f"{w['start']} – {w['end']}")
        now = (f"on until {w['activeUntil']}" if w["active"] else "over" if w["over"]
               else f"next {w['nextStart']}")
        scope = f"{', '.join(w['stages']) or 'every stage'} · {', '.join(w['services']) or 'every service'}"
        rows.append([w["name"], now, when, scope, w["running"]])
    return fitted(title, ["name", "now", "when", "stages · services", "running"], rows)


@freeze_app.command("list")
def freeze_list(project: str = typer.Option(...), output: str = OUTPUT):
    """A project's freeze windows: those on now, upcoming, and over."""
    with errors():
        windows = client().freezes(project)
    emit(windows, output, freezes_table(windows, f"{project}: {len(windows)} freeze window(s)"))


def get_freezes(project: str = typer.Option(...), output: str = OUTPUT):
    """A project's freeze windows (as `bosun freeze list`)."""
    freeze_list(project, output)


@freeze_app.command("create")
def freeze_create(name: str, project: str = typer.Option(...),
                  start: str = typer.Option(None, help="A one-off window's start, ISO 8601 (2026-12-24T18:00)"),
                  end: str = typer.Option(None, help="A one-off window's end"),
                  cron: str = typer.Option(None, help="A recurring window's starts: '0 18 * * fri'"),
                  duration: str = typer.Option(None, help="A recurring window's length: 2h, 90m, 2d14h"),
                  time_zone: str = typer.Option("UTC", "--time-zone", help="e.g. Europe/Vienna"),
                  stage: list[str] = typer.Option([], "--stage", help="Only this stage (repeatable)"),
                  service: list[str] = typer.Option([], "--service", help="Only this service (repeatable)"),
                  reason: str = typer.Option("", help="Why (shown with the window)"),
                  running: str = typer.Option("hold", help="hold: running sequences hold at their next task; "
                                                           "finish: they run to their end")):
    """Create a freeze window: one-off (--start, --end) or recurring (--cron, --duration)."""
    with errors():
        window = client().create_freeze(project, name, start=start, end=end, cron=cron, duration=duration,
                                        time_zone=time_zone, stages=stage, services=service, reason=reason,
                                        running=running)
    state = (f"on now, until {window['activeUntil']}" if window["active"] else
             f"next on {window['nextStart']} – {window['nextEnd']}" if window["nextStart"] else "already over")
    print(f"Freeze window '{window['name']}' of {project} is created: {state}.")


@freeze_app.command("delete")
def freeze_delete(name: str, project: str = typer.Option(...)):
    """Delete a freeze window: what it held or kept waiting goes on now."""
    with errors():
        answer = client().delete_freeze(project, name)
    print(answer["message"])


@freeze_app.command("let-through")
def freeze_let_through(context: str = typer.Option(..., "--context", "--keptn-context", help="The context"),
                       stage: str = typer.Option(...), reason: str = typer.Option(..., help="Why (required, audited)")):
    """Let one sequence through the freeze window that keeps it."""
    with errors():
        answer = client().sequence(context).let_through(stage, reason)
    print(f"Let through: the sequence in {stage} is {answer['state']}.")
