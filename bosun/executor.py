"""The job executor: runs the commands of a project's job definitions for the tasks Bosun triggers.

A client of the public API only, so it runs on any host:
1. It hears of changes by websocket (/ws/executor/) and looks for open tasks whose job it has, polling as
   a fallback (every 2 s without the socket, every 15 s with it).
2. It claims a task (one claim wins across executors), runs its command in a process group of its own
   with the triggering event in a JSON file ($BOSUN_EVENT_FILE) and an output folder ($BOSUN_OUTPUT_DIR),
   as another OS user when it can switch (`nobody` by default when it runs as root), with an allow-listed
   environment: a job never sees the executor's token or the server's secrets.
3. While the job runs it streams the output, heartbeats, and obeys what the heartbeat answers ask:
   cancel (SIGTERM, wait), kill (SIGTERM, SIGKILL after the job's killGrace, then confirm), suspend
   (SIGSTOP / SIGCONT).
4. When the job ends it reports the task's facts (machine, exit code, computation time, output files)
   and sends the task's `.finished`: exit 0 is pass/succeeded, anything else fail/errored; a result.json
   in the output folder may set result, status, message and data that later tasks receive.
"""

import json
import logging
import os
import platform
import pwd
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

from .client import BosunError, Client, Unreachable, answer
from .jobrun import HEARTBEAT_EVERY, JobRun
from .processes import become_subreaper, reap_orphans

log = logging.getLogger("bosun.executor")

JOBS_TTL = 10.0


def job_user_entry(name: str | None):
    """The OS user jobs run as: the one named; `nobody` when the executor runs as root and none is named;
    None (the executor's own user) otherwise, or when the name is empty."""
    if name is None:
        name = "nobody" if os.geteuid() == 0 else ""
    if not name:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ValueError(f"No OS user named {name!r} to run jobs as (--job-user).") from None
    if entry.pw_uid == os.geteuid():
        return None
    if os.geteuid() != 0:
        raise ValueError(f"Only an executor running as root can run jobs as {name!r} (--job-user).")
    return entry


class Executor:
    """Claims and runs jobs for the given projects (all projects when none are given)."""

    def __init__(self, url: str, token: str, projects=(), concurrency: int = 2, name: str | None = None,
                 work_dir: str | None = None, poll: float = 2.0, job_user: str | None = None):
        self.client = Client(url, token)
        self.projects = list(projects)
        self.concurrency = max(1, concurrency)
        self.name = name or f"bosun-executor/{socket.gethostname()}/{os.getpid()}"
        self.job_user = job_user_entry(job_user)
        self.own_work_dir = not work_dir
        self.work_dir = work_dir or tempfile.mkdtemp(prefix="bosun-jobs-")
        Path(self.work_dir).mkdir(parents=True, exist_ok=True)
        if self.job_user is not None:
            os.chmod(self.work_dir, 0o711)  # the job's user reaches its own folder, and lists no other
        self.poll = poll
        self.machine = {"machine": socket.gethostname(), "platform": platform.platform(terse=True)}
        self.runs: dict[str, JobRun] = {}
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.socket_open = False
        self._jobs: dict[str, list[dict]] = {}
        self._jobs_at = 0.0
        self._passed: dict[str, float] = {}  # tasks another executor claimed: not asked again for a while
        self._lock = threading.Lock()
        self.spawning = threading.Lock()
        self._changed: set[str] = set()  # projects named by notices since the last look
        self._everything = False
        # `manage.py up` starts a local executor that must not outlive it
        self.parent = int(os.environ.get("BOSUN_EXIT_WITH_PARENT") or 0)

    # --- lifecycle ---

    def run(self):
        become_subreaper()
        threading.Thread(target=self._listen, name="executor-socket", daemon=True).start()
        log.info("%s: running jobs of %s, %d at a time", self.name, ", ".join(self.projects) or "every project",
                 self.concurrency)
        only = None  # the projects to look at; None: all of them
        backoff = 0.0
        while not self.stopping.is_set():
            # Every failure of a request is transient (Bosun restarting, a proxy's error page, a throttle):
            # it is logged and waited out, never a reason to leave the jobs that run here orphaned.
            backoff = self._guarded(self.step, only, backoff=backoff)
            # After a failure, wait longer each time, but never so long that a running job misses a heartbeat.
            woken = self.wake.wait(backoff if backoff and not self.runs else self._interval())
            self.wake.clear()
            with self._lock:
                changed, self._changed = self._changed, set()
                everything, self._everything = self._everything or not woken, False
            # A notice names the project that changed: only its tasks are looked at (a busy project without
            # jobs costs this executor nothing). A quiet interval, a free slot or a reconnect: all of them.
            only = None if everything else changed
            if woken:
                backoff = self._guarded(self._heartbeat_all, True, only, backoff=backoff)
        self._shutdown()

    def _guarded(self, work, *args, backoff: float) -> float:
        """Run one piece of the loop; the seconds to wait before the next turn (0 after a success)."""
        try:
            work(*args)
            return 0.0
        except Unreachable as exc:
            log.warning("%s", exc)
        except BosunError as exc:
            log.warning("Bosun answered %s: %s", exc.code, exc.message)
        except Exception:
            log.exception("%s: unexpected failure; carrying on", self.name)
        return min(30.0, max(1.0, backoff * 2))

    def stop(self, *_):
        self.stopping.set()
        self.wake.set()

    def _interval(self) -> float:
        if not self.runs:
            return 15.0 if self.socket_open else self.poll
        return min([self.poll] + [run.heartbeat_every for run in list(self.runs.values())])

    def _shutdown(self):
        for run in list(self.runs.values()):
            run.kill("the executor is stopping")
        for run in list(self.runs.values()):
            run.done.wait(run.kill_grace + 3)
        if self.own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def step(self, only: set[str] | None = None):
        if self.parent and os.getppid() != self.parent:
            log.info("%s: the process that started it is gone; stopping", self.name)
            self.stop()
            return
        self._heartbeat_all(force=False)
        self._pick_up(only)
        with self.spawning:  # a job started meanwhile is known by its pid before its exit could be reaped here
            reap_orphans(keep={run.pgid for run in list(self.runs.values())})

    def finished(self, run: JobRun):
        with self._lock:
            self.runs.pop(run.triggered_id, None)
            self._passed[run.triggered_id] = time.monotonic() + 600  # never run a task twice
            self._everything = True
        self.wake.set()  # a free slot: look for more work, everywhere

    # --- finding work ---

    def _project_jobs(self) -> dict[str, list[dict]]:
        if time.monotonic() - self._jobs_at > JOBS_TTL:
            names = self.projects or self.client.project_names()
            self._jobs = {name: self.client.jobs(name) for name in names}
            self._jobs_at = time.monotonic()
        return self._jobs

    def _pick_up(self, only: set[str] | None = None):
        if len(self.runs) >= self.concurrency:
            return
        now = time.monotonic()
        self._passed = {k: v for k, v in self._passed.items() if v > now}
        for project, jobs in list(self._project_jobs().items()):
            if only is not None and project not in only:
                continue
            fresh = False
            for task in sorted({job["task"] for job in jobs}):
                for event in self.client.open_tasks(task, project):
                    if len(self.runs) >= self.concurrency:
                        return
                    if event["id"] in self.runs or event["id"] in self._passed:
                        continue
                    if not fresh:  # a task to run: with the project's jobs as they are now, never a stale copy
                        jobs = self._jobs[project] = self.client.jobs(project)
                        fresh = True
                    data = event.get("data") or {}
                    job = next((j for j in jobs if j["task"] == task
                                and (not j["stages"] or data.get("stage") in j["stages"])
                                and (not j["services"] or data.get("service") in j["services"])), None)
                    if job is not None:
                        self._claim(event, job)

    def _claim(self, event: dict, job: dict):
        try:
            claimed = answer(self.client.task_post(event["id"], "claim", {
                "executor": self.name, "killGrace": job.get("killGrace"), "machine": self.machine}))
        except BosunError as exc:
            self._passed[event["id"]] = time.monotonic() + 60
            log.debug("task %s not claimed: %s", event["id"], exc.message)
            return
        run = JobRun(self, event, job)
        if claimed.get("heartbeatTimeoutSeconds"):  # three heartbeats within the task's limit
            run.heartbeat_every = min(HEARTBEAT_EVERY, max(0.2, claimed["heartbeatTimeoutSeconds"] / 3))
        with self._lock:
            self.runs[run.triggered_id] = run
        log.info("%s: running job '%s' for task %s", self.name, job["name"], run.triggered_id)
        run.start()

    # --- what Bosun asks of running jobs ---

    def _heartbeat_all(self, force: bool, projects: set[str] | None = None):
        for run in list(self.runs.values()):
            asked = force and (projects is None or run.data.get("project") in projects)
            if asked or time.monotonic() - run.last_heartbeat >= run.heartbeat_every:
                self._heartbeat(run)

    def _heartbeat(self, run: JobRun):
        run.last_heartbeat = time.monotonic()
        if run.exited.is_set() and not run.kill_requested:
            return
        try:
            response = self.client.task_post(run.triggered_id, "heartbeat", ok=(200, 409, 404))
            if response.status_code == 404:
                run.stop_unwanted("the task no longer exists")
                return
            asked = answer(response)
        except (Unreachable, BosunError) as exc:  # the next heartbeat tries again
            log.warning("job %s: heartbeat not answered: %s", run.triggered_id, exc)
            return
        if not isinstance(asked, dict):
            log.warning("job %s: heartbeat answered %r", run.triggered_id, asked)
            return
        state = asked.get("state")
        if asked.get("killRequested"):
            run.kill()
        elif asked.get("cancelRequested"):
            run.cancel()
        elif state in ("finished", "timedOut", "killed"):
            run.stop_unwanted(f"the task is {state}")
        elif state in ("triggered", "started"):
            run.suspend(bool(asked.get("suspendRequested")))

    # --- the websocket: a nudge whenever a project's tasks change ---

    def _heard(self, message):
        """A project this executor has no jobs list for yet (a new one): read the lists again now."""
        try:
            notice = json.loads(message)
            project, message_kind = notice.get("project"), notice.get("event")
        except (ValueError, AttributeError):
            return
        if not project:
            return
        with self._lock:
            self._changed.add(project)
        if project not in self._jobs and (not self.projects or project in self.projects):
            self._jobs_at = 0.0
        if message_kind == "jobs":  # a project's jobs changed: tasks of a new name may be ours now
            self._jobs_at = 0.0

    def _listen(self):
        from websockets.exceptions import WebSocketException
        from websockets.sync.client import connect

        base = self.client.url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        query = urlencode([("project", p) for p in self.projects])
        url = f"{base}/ws/executor/" + (f"?{query}" if query else "")
        backoff = 0.5
        while not self.stopping.is_set():
            try:
                with connect(url, additional_headers={"x-token": self.client.token}, open_timeout=10) as ws:
                    self.socket_open, backoff = True, 0.5
                    self._everything = True
                    self.wake.set()  # catch up on what happened while we were away
                    while not self.stopping.is_set():
                        try:
                            message = ws.recv(timeout=1.0)
                        except TimeoutError:
                            continue
                        self._heard(message)
                        self.wake.set()
            except (OSError, WebSocketException) as exc:
                log.debug("executor socket: %s", exc)
            except Exception:  # the socket only nudges; polling goes on without it
                log.exception("executor socket failed; reconnecting")
            self.socket_open = False
            self.stopping.wait(backoff)
            backoff = min(backoff * 2, 10.0)
