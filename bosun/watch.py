"""`bosun watch`: a live terminal view of a project's running and waiting sequences.

It redraws whenever Bosun says the project changed (the /ws/executor/ websocket, which a token that may
operate sequences may open), and at least every 2 seconds, so it also works for a viewer's token and where the
socket cannot be opened.
"""

import threading
from urllib.parse import urlencode

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .sdk import Client

ACTIVE = ("started", "paused", "waitingForApproval", "aborting", "waiting")
STYLE = {"started": "cyan", "paused": "yellow", "waitingForApproval": "magenta", "aborting": "red", "waiting": "dim"}


def view(client: Client, project: str) -> Group:
    """The view once: a table of the active sequence executions, with progress and blockers."""
    runs = []
    for state in ACTIVE:
        runs += client.sequences(project, status=state, page_size=100)
    runs.sort(key=lambda r: (r["scope"]["stage"], r["scope"]["service"], r["triggeredAt"] or ""))
    table = Table(title=f"{project}: {len(runs)} running or waiting", title_justify="left", expand=True)
    for column in ("stage", "service", "sequence", "state", "progress", "task", "blocked by"):
        table.add_column(column, overflow="fold")
    for run in runs:
        status, queue = run["status"], run.get("queue") or {}
        total = len(run["sequence"]["tasks"])
        done = len(status["previousTasks"])
        bar = "█" * done + "░" * max(0, total - done)
        task = status["currentTask"]
        blocker = queue.get("blockedBy") or {}
        state = status["state"] + (f" #{queue['position']}" if status["state"] == "waiting" and queue.get("position")
                                   else "")
        table.add_row(run["scope"]["stage"], run["scope"]["service"], run["sequence"]["name"],
                      Text(state, style=STYLE.get(status["state"], "")), f"{bar} {done}/{total}",
                      f"{task['name']} ({task['state']})" if task else "",
                      f"{blocker.get('sequence', '')} {blocker.get('keptnContext', '')[:8]} ({blocker.get('state')})"
                      if blocker else f"❄ {queue['frozen']['description']}" if queue.get("frozen") else "")
    if not runs:
        table.add_row("—", "", "", "nothing runs or waits", "", "", "")
    return Group(table, Text("Ctrl+C quits · updates on every change", style="dim"))


def _listen(client: Client, project: str, changed: threading.Event, stopping: threading.Event):
    from websockets.exceptions import WebSocketException
    from websockets.sync.client import connect

    base = client.url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    url = f"{base}/ws/executor/?{urlencode({'project': project})}"
    while not stopping.is_set():
        try:
            with connect(url, additional_headers={"x-token": client.token}, open_timeout=5) as socket:
                while not stopping.is_set():
                    try:
                        socket.recv(timeout=1.0)
                    except TimeoutError:
                        continue
                    changed.set()
        except (OSError, WebSocketException):
            stopping.wait(2.0)


def watch_project(client: Client, project: str, once: bool = False, console: Console | None = None):
    console = console or Console()
    client.get(f"/api/controlPlane/v1/project/{project}")  # a clear 404 for a project that does not exist
    if once:
        console.print(view(client, project))
        return
    changed, stopping = threading.Event(), threading.Event()
    threading.Thread(target=_listen, args=(client, project, changed, stopping), daemon=True).start()
    try:
        with Live(view(client, project), console=console, refresh_per_second=4, screen=False) as live:
            while True:
                changed.wait(2.0)
                changed.clear()
                live.update(view(client, project))
    finally:
        stopping.set()
