"""Bosun's Python SDK: trigger and follow sequences, pause, resume, abort them, and look at their tasks.

    from bosun import Client
    client = Client()                       # BOSUN_URL / BOSUN_TOKEN, or what `bosun auth` saved
    run = client.trigger_delivery("sockshop", "carts", "docker.io/keptnexamples/carts", tag="0.11.1")
    with run.sync_context():                # Ctrl+C while waiting kills the running task and aborts
        outcome = run.wait(timeout=600)
    for task in run.tasks():
        print(task.name, task.get_status(), task.get_machine_type(), task.get_computation_time())
        print(task.get_output_files_info())

Every error Bosun answers is a BosunError carrying its message; an unreachable server is Unreachable.
"""

import time
from datetime import datetime, timezone
from contextlib import contextmanager
from dataclasses import dataclass

from . import config
from .client import BosunError, Unreachable
from .client import answer as read
from .client import TERMINAL  # noqa: F401  (the SDK's callers test states against it)
from .client import Client as _Http
from .images import ImageError, image_reference  # noqa: F401  (ImageError: what a caller catches)

__all__ = ["BosunError", "Client", "OutputFiles", "Sequence", "Task", "Unreachable"]


def _human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} GB"


@dataclass
class OutputFiles:
    """A task's output files (name and size); printable as a table."""

    files: list[dict]
    total: int

    def __str__(self) -> str:
        lines = [f"Total size: {_human_size(self.total)}", "Contents:", f"  {'Size':<12} Name"]
        lines += [f"  {_human_size(f['size']):<12} {f['name']}" for f in self.files]
        return "\n".join(lines)

    def __iter__(self):
        return iter(self.files)

    def __len__(self):
        return len(self.files)


@contextmanager
def _stopped_on_interrupt(stop):
    """Within it, Ctrl+C first runs `stop` (a kill, as far as Bosun can be reached), then goes on."""
    try:
        yield
    except KeyboardInterrupt:
        try:
            stop()
        except (BosunError, Unreachable):
            pass
        raise


class Task:
    """One task execution, by its triggered id (the id of its `.triggered` event)."""

    def __init__(self, triggered_id: str, client: "Client | None" = None):
        self.triggered_id = triggered_id
        self.client = client or Client()
        self._info: dict | None = None

    def __repr__(self):
        return f"<Task {self.triggered_id}>"

    def info(self) -> dict:
        """Everything Bosun knows of the task: state, result, requests, facts, log size."""
        self._info = self.client.get(f"/api/controlPlane/v1/task/{self.triggered_id}")
        return self._info

    @property
    def name(self) -> str:
        return (self._info or self.info())["task"]

    def get_status(self) -> str:
        """Where the task is: scheduled, triggered, started, killing, killed, abandoned or timedOut; a finished
        task says how it finished: success (pass), warning or failed (fail)."""
        info = self.info()
        if info["state"] == "finished":
            return FINISHED_AS.get(info.get("result") or "", "failed")
        return info["state"]

    def is_running(self) -> bool:
        """Whether it has yet to end (triggered, started, killing)."""
        return self.info()["state"] in OPEN_STATES

    def wait(self, timeout: float | None = None, poll: float = 0.5) -> str:
        """Wait until the task ends; returns get_status() then. TimeoutError past `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._info = None
            if not self.is_running():
                return self.get_status()
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"Task {self.triggered_id} still runs after {timeout:g}s.")
            time.sleep(poll)

    @contextmanager
    def sync_context(self):
        """Within it, an interrupted wait (Ctrl+C) kills the task: its job dies with the local session."""
        with _stopped_on_interrupt(lambda: self.kill(reason="the waiting session was interrupted")):
            yield self

    def get_machine_type(self) -> str | None:
        """The host (and platform) of the executor that ran it, if a job executor did."""
        facts = self.info().get("facts") or {}
        if not facts.get("machine"):
            return None
        return f"{facts['machine']} ({facts['platform']})" if facts.get("platform") else facts["machine"]

    def get_computation_time(self) -> str | None:
        """How long its job ran (or has been running), as HH:MM:SS; None before an executor started it."""
        info = self.info()
        seconds = (info.get("facts") or {}).get("computationSeconds")
        if seconds is None and info.get("startedAt"):  # running: the time since it started
            started = datetime.fromisoformat(info["startedAt"].replace("Z", "+00:00"))
            ended = info.get("finishedAt")
            until = datetime.fromisoformat(ended.replace("Z", "+00:00")) if ended else datetime.now(timezone.utc)
            seconds = max(0.0, (until - started).total_seconds())
        if seconds is None:
            return None
        whole = int(round(seconds))
        return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"

    def get_output_files_info(self) -> OutputFiles:
        facts = self.info().get("facts") or {}
        files = facts.get("outputFiles") or []
        return OutputFiles(files, facts.get("outputBytes", sum(f["size"] for f in files)))

    def logs(self) -> str:
        """The job's log (its tail, with a note, if it was cut)."""
        return self.client.request("GET", f"/api/controlPlane/v1/task/{self.triggered_id}/log").text

    def kill(self, reason: str = "") -> dict:
        """Kill the task: it ends failed now and its executor terminates its processes."""
        return self._command("kill", {"reason": reason})

    def finish(self, result: str, status: str = "succeeded", reason: str = "") -> dict:
        """Finish the task by hand with a result and status (a reason is required)."""
        return self._command("finish", {"result": result, "status": status, "reason": reason})

    def retry(self, reason: str = "") -> dict:
        """Retry from here: this task, the one its ended sequence failed or timed out at, runs again (a new
        attempt) and the sequence goes on from it. The answer's `triggeredId` is the new attempt (None while the
        sequence waits for its lane)."""
        return self._command("retry", {"reason": reason})

    def approve(self, reason: str = "") -> dict:
        return self._command("approve", {"reason": reason})

    def decline(self, reason: str) -> dict:
        return self._command("decline", {"reason": reason})

    def _command(self, command: str, body: dict) -> dict:
        return read(self.client.task_post(self.triggered_id, command, body,
                                          ok=(200,), headers={"X-Bosun-Source": self.client.source}))


class Sequence:
    """Every sequence execution of one context (a delivery and what it chains into) in one project."""

    def __init__(self, client: "Client", context: str, project: str):
        self.client = client
        self.context = context
        self.project = project
        self.message = ""

    def __repr__(self):
        return f"<Sequence {self.project} {self.context}>"

    def executions(self) -> list[dict]:
        """Its sequence executions, oldest first, in Keptn's shape (plus queue and timeouts)."""
        found = self.client.get("/api/controlPlane/v1/sequence-execution", project=self.project,
                                keptnContext=self.context, pageSize=100)["sequenceExecutions"]
        return list(reversed(found))

    def outcome(self) -> dict:
        """The context as Bosun shows it: {"key", "label"}, e.g. {"key": "failed", "label": "Failed (rolled
        back)"} (the outcome of all its stages and chained sequences; a rollback does not undo a failure)."""
        states = self.client.get(f"/api/controlPlane/v1/sequence/{self.project}", keptnContext=self.context)["states"]
        return states[0]["outcome"] if states else {"key": "", "label": ""}

    def result(self) -> str:
        """pass, warning, fail, aborted or timedOut once nothing of the context runs or waits, else ''."""
        return RESULTS.get(self.outcome()["key"], "")

    def status(self) -> dict:
        """{state, result, stage, sequence}: the running (or last) execution, and the outcome so far."""
        runs = self.executions()
        if not runs:
            return {"state": "unknown", "result": "", "stage": "", "sequence": ""}
        active = [r for r in runs if r["status"]["state"] not in TERMINAL]
        shown = (active or runs)[-1]
        return {"state": shown["status"]["state"], "result": self.result() if not active else "",
                "stage": shown["scope"]["stage"], "sequence": shown["sequence"]["name"]}

    def wait(self, timeout: float | None = None, poll: float = 0.5) -> str:
        """Wait until nothing of the context runs or waits; returns its outcome: pass, warning, fail,
        aborted or timedOut. TimeoutError past `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            runs = self.executions()
            if runs and all(r["status"]["state"] in TERMINAL for r in runs):
                return self.result()
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"Context {self.context} still runs after {timeout:g}s.")
            time.sleep(poll)

    def pause(self, stage: str | None = None, suspend_running: bool = False, reason: str = "") -> dict:
        return self._control("pause", stage=stage, suspendRunning=suspend_running, reason=reason)

    def resume(self, stage: str | None = None) -> dict:
        return self._control("resume", stage=stage)

    def abort(self, mode: str = "graceful", stage: str | None = None, reason: str = "") -> dict:
        """graceful (the running task may end), force (now; the task is abandoned) or kill (and its processes)."""
        return self._control("abort", stage=stage, mode=mode, reason=reason)

    def rerun(self, stage: str, sequence: str | None = None, new_context: bool = False,
              reason: str = "") -> "Sequence":
        """Run this context's ended sequence of `stage` again with the same input (the latest one, or the one
        named `sequence`); in a new context with `new_context`. Returns the Sequence it runs in."""
        body = {"stage": stage, "sequence": sequence or "", "newContext": new_context, "reason": reason}
        answer = read(self.client.post(f"/api/controlPlane/v1/sequence/{self.project}/{self.context}/retrigger",
                                       body, ok=(201,), headers={"X-Bosun-Source": self.client.source}))
        again = self if answer["keptnContext"] == self.context else Sequence(self.client, answer["keptnContext"],
                                                                             self.project)
        again.rerun_answer = answer
        return again

    def let_through(self, stage: str, reason: str) -> dict:
        """Let this context's sequence of `stage` through the freeze window that keeps it (needs the
        pass_freezes permission; the reason is kept in the audit trail)."""
        return read(self.client.post(f"/api/controlPlane/v1/sequence/{self.project}/{self.context}/let-through",
                                     {"stage": stage, "reason": reason},
                                     headers={"X-Bosun-Source": self.client.source}))

    def _control(self, state: str, **body) -> dict:
        body = {k: v for k, v in body.items() if v not in (None, "")}
        return read(self.client.post(f"/api/controlPlane/v1/sequence/{self.project}/{self.context}/control",
                                     {"state": state, **body}, headers={"X-Bosun-Source": self.client.source}))

    def tasks(self) -> list[Task]:
        """Its task executions so far, in order."""
        found = []
        for run in self.executions():
            status = run["status"]
            for entry in status["previousTasks"] + ([status["currentTask"]] if status["currentTask"] else []):
                found.append(Task(entry["triggeredID"], self.client))
        return found

    def events(self, type: str | None = None) -> list[dict]:
        return self.client.events(self.context, type=type)

    @contextmanager
    def sync_context(self):
        """Within it, an interrupted wait (Ctrl+C) kills the running task and aborts the sequence."""
        with _stopped_on_interrupt(lambda: self.abort(mode="kill", reason="the waiting session was interrupted")):
            yield self


# How a finished task reads in get_status(), by its result; the states in which a task has yet to end.
FINISHED_AS = {"pass": "success", "warning": "warning", "fail": "failed"}
OPEN_STATES = ("scheduled", "triggered", "started", "killing")

# Bosun's outcome keys (the API's `outcome.key`) as the results scripts test for.
RESULTS = {"succeeded": "pass", "warning": "warning", "failed": "fail", "superseded": "fail",
           "aborted": "aborted", "timedout": "timedOut"}


def queue_words(queue: dict | None) -> str:
    """Why a waiting execution waits, in a few words: "#2 ← 1a2b3c4d" (behind that context), "#1 ❄ frozen until ... (window
    'release-week')" (the API's `queue` object; the CLI's lists and `bosun watch` show it)."""
    queue = queue or {}
    if not queue.get("position"):
        return ""
    frozen = queue.get("frozen")
    if frozen:
        return f"#{queue['position']} ❄ {frozen['description']}"
    blocker = (queue.get("blockedBy") or {}).get("keptnContext", "")
    return f"#{queue['position']}" + (f" ← {blocker[:8]}" if blocker else "")


class Client(_Http):
    """Bosun's API for people and scripts. url/token default to BOSUN_URL/BOSUN_TOKEN or `bosun auth`."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 15.0,
                 source: str = "api"):
        url, token = config.resolve(url, token)
        super().__init__(url, token, timeout)
        self.source = source  # how the audit trail names where commands come from (api or cli)

    def post(self, path, body=None, *, ok=(200,), **kwargs):
        return super().post(path, body, ok=ok, **kwargs)

    def first_stage(self, project: str) -> str:
        return self.get(f"/api/controlPlane/v1/project/{project}")["stages"][0]["stageName"]

    def trigger_sequence(self, name: str, project: str, stage: str, service: str, labels: dict | None = None,
                         data: dict | None = None) -> Sequence:
        """Trigger `<stage>.<name>` for a service; returns its Sequence (the context)."""
        event = {"specversion": "1.0", "source": "bosun-cli" if self.source == "cli" else "bosun-sdk",
                 "type": f"sh.keptn.event.{stage}.{name}.triggered", "datacontenttype": "application/json",
                 "data": {**(data or {}), "project": project, "stage": stage, "service": service}}
        if labels:
            event["data"]["labels"] = labels
        answer = read(self.send_event(event))
        run = Sequence(self, answer["keptnContext"], project)
        run.message = answer.get("message", "")  # e.g. why it ended at once (no such stage or sequence)
        return run

    def trigger_delivery(self, project: str, service: str, image: str, tag: str | None = None,
                         stage: str | None = None, sequence: str = "delivery", labels: dict | None = None) -> Sequence:
        """Deliver an image (image:tag, or an image that ends with its tag) to a service, from the first stage
        unless one is given. ValueError (ImageError) says what is wrong with the image and tag."""
        values = {"image": image_reference(image, tag)}
        return self.trigger_sequence(sequence, project, stage or self.first_stage(project), service, labels,
                                     {"configurationChange": {"values": values}})

    def sequence(self, context: str, project: str | None = None) -> Sequence:
        """The Sequence of a context (its project is looked up when not given)."""
        if project is None:
            events = self.get("/api/v1/event", keptnContext=context, pageSize=1)["events"]
            if not events:
                raise BosunError(404, f"No sequence has context {context}.")
            project = (events[0].get("data") or {}).get("project")
        return Sequence(self, context, project)

    def sequences(self, project: str, stage: str | None = None, service: str | None = None,
                  status: str | None = None, name: str | None = None, page_size: int = 50) -> list[dict]:
        """Sequence executions of a project, newest first (with queue position and blocker)."""
        return self.get("/api/controlPlane/v1/sequence-execution", project=project, stage=stage, service=service,
                        status=status, name=name, pageSize=page_size)["sequenceExecutions"]

    def events(self, context: str, type: str | None = None) -> list[dict]:
        """The event log of a context, oldest first (all pages)."""
        found, key = [], None
        while True:
            page = self.get("/api/v1/event", keptnContext=context, type=type, pageSize=100, nextPageKey=key)
            found += page["events"]
            key = page.get("nextPageKey")
            if not key:
                return found

    def blocking(self, project: str, stage: str, service: str) -> dict | None:
        """The sequence execution that holds a lane (the one others wait behind), or None if it is free."""
        for state in ("started", "paused", "waitingForApproval", "aborting"):
            found = self.sequences(project, stage=stage, service=service, status=state, page_size=10)
            for run in found:
                if state != "paused" or run["status"].get("stateBeforePause") != "waiting":
                    return run
        return None

    def task(self, triggered_id: str) -> Task:
        return Task(triggered_id, self)

    # --- freeze windows ---

    def freezes(self, project: str) -> list[dict]:
        """A project's freeze windows: those on now first, then upcoming ones, then those that are over."""
        return self.get(f"/api/controlPlane/v1/project/{project}/freeze")["windows"]

    def create_freeze(self, project: str, name: str, *, start: str | None = None, end: str | None = None,
                      cron: str | None = None, duration: str | None = None, time_zone: str = "UTC",
                      stages: list[str] | None = None, services: list[str] | None = None, reason: str = "",
                      running: str = "hold") -> dict:
        """A one-off window (start, end: ISO 8601) or a recurring one (cron, duration such as 2h, in time_zone).
        BosunError(400) names the field that is wrong."""
        body = {"name": name, "start": start, "end": end, "cron": cron, "duration": duration, "timeZone": time_zone,
                "stages": stages, "services": services, "reason": reason, "running": running}
        return read(self.post(f"/api/controlPlane/v1/project/{project}/freeze",
                              {k: v for k, v in body.items() if v not in (None, "", [])}, ok=(201,),
                              headers={"X-Bosun-Source": self.source}))

    def delete_freeze(self, project: str, name: str) -> dict:
        """Delete a window: what it held or kept waiting goes on now."""
        return read(self.request("DELETE", f"/api/controlPlane/v1/project/{project}/freeze/{name}",
                                 headers={"X-Bosun-Source": self.source}))
