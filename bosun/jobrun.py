"""One job of the job executor: a command run in a process group of its own for one task.

It gets the task's `.triggered` event in $BOSUN_EVENT_FILE and a folder for output files in
$BOSUN_OUTPUT_DIR, streams its output to Bosun, and reports the task's facts and `.finished` when it ends.
Cancel (SIGTERM), kill (SIGTERM, SIGKILL after the job's killGrace) and suspend (SIGSTOP / SIGCONT) reach
its whole process group.
"""

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from .client import BosunError, Unreachable
from .output import BoundedOutput, pump
from .processes import JobProcesses

log = logging.getLogger("bosun.executor")

HEARTBEAT_EVERY = 5.0  # seconds; Bosun's default heartbeatTimeout for executor-run tasks is 30s
LOG_FLUSH_EVERY = 0.25
MAX_RESULT_BYTES = 1024 * 1024  # result.json: a job's result, message and data for later tasks
RESULTS = ("pass", "warning", "fail")
# The executor's variables a job inherits; everything else (tokens, the server's secrets) stays behind.
INHERITED = {"PATH", "LANG", "LANGUAGE", "TZ", "TERM"}
STATUSES = ("succeeded", "errored", "aborted", "unknown")


class JobRun:
    """One job process for one task."""

    def __init__(self, executor, event: dict, job: dict):
        self.executor = executor
        self.client = executor.client
        self.event = event
        self.job = job
        self.triggered_id = event["id"]
        self.context = event.get("shkeptncontext", "")
        self.data = event.get("data") or {}
        self.task = event["type"].removeprefix("sh.keptn.event.").removesuffix(".triggered")
        self.kill_grace = float(job.get("killGrace") or 5.0)
        self.dir = Path(executor.work_dir) / self.triggered_id
        self.output = self.dir / "output"
        self.proc: subprocess.Popen | None = None
        self.pgid = 0
        self.processes: JobProcesses | None = None
        self.exited = threading.Event()
        self.done = threading.Event()
        self.status = 0
        self.rusage = None
        self.output_buffer = BoundedOutput()
        self._timer: threading.Timer | None = None
        self.cancelled = self.kill_requested = self.unwanted = self.suspended = self.timed_out = False
        self.last_heartbeat = time.monotonic()
        self.heartbeat_every = HEARTBEAT_EVERY
        self.started_at = time.time()

    # --- control (called from the executor's loop) ---

    def say(self, text: str):
        self.output_buffer.note(f"[bosun] {text}\n")

    def cancel(self):
        if self.cancelled or self.exited.is_set():
            return
        self.cancelled = True
        self.say("cancel requested: SIGTERM sent to the job's processes")
        self._resume_if_suspended()
        self._signal(signal.SIGTERM)

    def kill(self, note="kill requested"):
        if self.kill_requested:
            return
        self.kill_requested = True
        self.say(f"{note}: SIGTERM now, SIGKILL in {self.kill_grace:g}s if anything is left")
        self._resume_if_suspended()
        self._signal(signal.SIGTERM)
        threading.Thread(target=self._kill_after_grace, name=f"kill-{self.triggered_id[:8]}", daemon=True).start()

    def stop_unwanted(self, why: str):
        """The task ended without us (force-finished, timed out): its job's result is of no use."""
        if self.unwanted or self.kill_requested:
            return
        self.unwanted = True
        self.kill_requested = True
        self.say(f"{why}: stopping the job")
        self._resume_if_suspended()
        self._signal(signal.SIGTERM)
        threading.Thread(target=self._kill_after_grace, daemon=True).start()

    def suspend(self, wanted: bool):
        if wanted == self.suspended or self.exited.is_set():
            return
        self.suspended = wanted
        self._signal(signal.SIGSTOP if wanted else signal.SIGCONT)
        self.say("suspended (SIGSTOP)" if wanted else "resumed (SIGCONT)")

    def _resume_if_suspended(self):
        if self.suspended:
            self.suspended = False
            self._signal(signal.SIGCONT)

    def _signal(self, sig: int):
        if self.processes is not None:
            self.processes.signal(sig)

    def _alive(self) -> bool:
        return self.processes is not None and self.processes.alive()

    def _kill_after_grace(self):
        deadline = time.monotonic() + self.kill_grace
        while time.monotonic() < deadline:
            if self.exited.is_set() and not self._alive():
                return
            time.sleep(0.1)
        if self._alive():
            self.say(f"still running after {self.kill_grace:g}s: SIGKILL")
            self._signal(signal.SIGKILL)

    # --- running ---

    def start(self):
        threading.Thread(target=self._run, name=f"job-{self.triggered_id[:8]}", daemon=True).start()

    def _run(self):
        try:
            self._execute()
        except Unreachable as exc:
            log.error("job %s: %s", self.triggered_id, exc)
        except Exception:
            log.exception("job %s failed in the executor", self.triggered_id)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)  # its facts are reported; nothing piles up
            self.done.set()
            self.executor.finished(self)

    def _environment(self) -> dict:
        """Only what a job needs: an allow-list of the executor's variables (never its credentials or the
        server's secrets), the job definition's own `env`, and the task's BOSUN_* variables."""
        env = {name: value for name, value in os.environ.items()
               if name in INHERITED or name.startswith("LC_")}
        user = self.executor.job_user
        home = str(self.dir)
        env.update(HOME=home, TMPDIR=home)
        if user is not None:
            env.update(USER=user.pw_name, LOGNAME=user.pw_name)
        env.update({str(k): str(v) for k, v in (self.job.get("env") or {}).items()})
        env.update(
            BOSUN_EVENT_FILE=str(self.dir / "event.json"), BOSUN_OUTPUT_DIR=str(self.output),
            BOSUN_TRIGGERED_ID=self.triggered_id, BOSUN_CONTEXT=self.context, BOSUN_TASK=self.task,
            BOSUN_PROJECT=str(self.data.get("project", "")), BOSUN_STAGE=str(self.data.get("stage", "")),
            BOSUN_SERVICE=str(self.data.get("service", "")), BOSUN_URL=self.client.url, PYTHONUNBUFFERED="1",
        )
        return env

    def _prepare(self):
        """The job's folder (its event file and output folder), owned by the job's user and private to it."""
        self.dir.mkdir(mode=0o700, exist_ok=True)
        self.output.mkdir(mode=0o700, exist_ok=True)
        event_file = self.dir / "event.json"
        descriptor = os.open(event_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump(self.event, out, indent=2)
        user = self.executor.job_user
        if user is not None:
            for path in (self.dir, self.output, event_file):
                os.chown(path, user.pw_uid, user.pw_gid)

    def _spawn(self, command: list[str], cwd: str) -> subprocess.Popen:
        user = self.executor.job_user
        switch = {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        return subprocess.Popen(command, cwd=cwd, env=self._environment(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                                umask=0o077, **switch)

    def _execute(self):
        self._prepare()
        command = [str(part) for part in self.job["command"]]
        cwd = self.job.get("workingDir") or str(self.dir)
        self.say(f"running {os.path.basename(command[0])} for task '{self.task}' on {socket.gethostname()}")
        with self.executor.spawning:
            try:
                self.proc = self._spawn(command, cwd)
            except (OSError, ValueError, subprocess.SubprocessError) as exc:
                self.proc = None
                failure = exc
            else:
                self.pgid = self.proc.pid
                self.processes = JobProcesses(self.proc.pid, self.triggered_id)
        if self.proc is None:
            self.say(f"could not start {command[0]}: {failure}")
            self._flush()
            self._finish("fail", "errored", f"Job '{self.job['name']}' could not start: {failure}", {})
            return
        self._report({"pid": self.proc.pid, "job": self.job["name"],
                      "startedAt": _iso(self.started_at)})
        reader = threading.Thread(target=self._read, daemon=True)
        reader.start()
        threading.Thread(target=self._wait, daemon=True).start()
        limit = self.job.get("timeout")
        if limit:  # on a clock of its own: sending a flood of output never delays it
            self._timer = threading.Timer(limit, self._time_out, args=(limit,))
            self._timer.daemon = True
            self._timer.start()
        while not self.exited.wait(LOG_FLUSH_EVERY):
            self._flush()
        if self._timer is not None:
            self._timer.cancel()
        reader.join(timeout=2)  # a child that keeps stdout open must not hold up the result
        ended = time.time()
        left_alive = False
        if self.kill_requested or self.timed_out:
            left_alive = self._until_none_is_left()
        facts = self._facts(ended)
        confirm_kill = self.kill_requested and not self.unwanted and not self.timed_out
        outcome = None if confirm_kill or self.unwanted else self._outcome(facts)  # its notes reach the log
        self._flush()
        self._report(facts)
        if confirm_kill and left_alive:
            log.error("job %s: processes survived SIGKILL; the kill is not confirmed", self.triggered_id)
        elif confirm_kill:
            try:
                self.client.task_post(self.triggered_id, "killed", ok=(200, 409))
            except BosunError as exc:
                log.warning("job %s: kill confirmation refused: %s", self.triggered_id, exc.message)
            return
        if outcome is not None:
            self._finish(*outcome)

    def _until_none_is_left(self) -> bool:
        """After a kill or a timeout: wait out the grace, SIGKILL whatever is left (also children that left
        the job's session) until nothing is; whether anything survived that."""
        deadline = time.monotonic() + self.kill_grace + 1
        while self._alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(50):
            if not self._alive():
                return False
            self._signal(signal.SIGKILL)
            time.sleep(0.1)
        survivors = self.processes.pids()
        self.say(f"{len(survivors)} process(es) of the job survived SIGKILL: {sorted(survivors)}")
        return True

    def _time_out(self, limit: float):
        if self.exited.is_set() or self.timed_out:
            return
        self.timed_out = True
        self.say(f"the job ran past its timeout of {limit:g}s")
        self._resume_if_suspended()
        self._signal(signal.SIGTERM)
        self._kill_after_grace()

    def _read(self):
        try:
            pump(self.proc.stdout.fileno(), self.output_buffer)
        except OSError as exc:
            self.say(f"the job's output could not be read further: {exc}")
        finally:
            self.proc.stdout.close()

    def _wait(self):
        try:
            _, status, rusage = os.wait4(self.proc.pid, 0)
            self.status, self.rusage = status, rusage
            self.proc.returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            self.proc.returncode = self.proc.returncode if self.proc.returncode is not None else -1
        self.exited.set()

    def _flush(self):
        text = self.output_buffer.take()
        while text:
            chunk, text = text[:60_000], text[60_000:]
            try:
                self.client.task_post(self.triggered_id, "log", {"text": chunk}, ok=(200, 404))
            except (BosunError, Unreachable) as exc:
                log.warning("job %s: log not sent: %s", self.triggered_id, exc)
                return

    def _report(self, facts: dict):
        try:
            self.client.task_post(self.triggered_id, "facts", facts, ok=(200, 404))
        except (BosunError, Unreachable) as exc:
            log.warning("job %s: facts not sent: %s", self.triggered_id, exc)

    def _facts(self, ended: float) -> dict:
        code = self.proc.returncode
        facts = {"exitCode": code, "computationSeconds": round(ended - self.started_at, 3),
                 "endedAt": _iso(ended), **self.executor.machine}
        if code is not None and code < 0:
            facts["signal"] = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        if self.rusage is not None:
            facts["cpuSeconds"] = round(self.rusage.ru_utime + self.rusage.ru_stime, 3)
        files = []
        for path in sorted(self.output.rglob("*")):
            if path.is_file() and not path.is_symlink():
                files.append({"name": str(path.relative_to(self.output)), "size": path.stat().st_size})
        facts["outputFiles"] = files
        facts["outputBytes"] = sum(f["size"] for f in files)
        return facts

    def _outcome(self, facts: dict) -> tuple[str, str, str, dict]:
        code = self.proc.returncode
        name = self.job["name"]
        if self.timed_out:
            return "fail", "errored", f"Job '{name}' ran past its timeout of {self.job['timeout']:g}s and was stopped.", {}
        if code == 0:
            result, status, message = "pass", "succeeded", f"Job '{name}' succeeded."
        elif code is not None and code < 0:
            result, status = "fail", "errored"
            message = f"Job '{name}' was ended by {facts.get('signal', 'a signal')}."
            if self.cancelled:
                status, message = "aborted", f"Job '{name}' was cancelled ({facts.get('signal', 'signal')})."
        else:
            result, status, message = "fail", "errored", f"Job '{name}' exited with code {code}."
        data = {}
        result_file = self.output / "result.json"
        if result_file.is_file() and not result_file.is_symlink():
            declared = None
            try:
                with open(result_file, "rb") as source:
                    text = source.read(MAX_RESULT_BYTES + 1)
                if len(text) > MAX_RESULT_BYTES:
                    self.say(f"result.json is larger than {MAX_RESULT_BYTES // 1024} KiB; it is ignored")
                else:
                    declared = json.loads(text)
            except (ValueError, OSError, RecursionError) as exc:
                self.say(f"result.json is not valid JSON ({exc}); it is ignored")
            if isinstance(declared, dict):
                if declared.get("result") in RESULTS:
                    result = declared["result"]
                if declared.get("status") in STATUSES:
                    status = declared["status"]
                if isinstance(declared.get("message"), str):
                    message = declared["message"]
                if isinstance(declared.get("data"), dict):
                    data = declared["data"]
        if code != 0 and result == "pass":
            result = "fail"  # a job that failed never reports pass
        return result, status, message, data

    def _finish(self, result: str, status: str, message: str, data: dict):
        scope = {k: self.data.get(k) for k in ("project", "stage", "service") if self.data.get(k)}
        event = {
            "specversion": "1.0", "source": self.executor.name, "type": f"sh.keptn.event.{self.task}.finished",
            "datacontenttype": "application/json", "shkeptncontext": self.context, "triggeredid": self.triggered_id,
            "data": {**data, **scope, "result": result, "status": status, "message": message},
        }
        wait = 0.5
        while True:
            try:
                self.client.send_event(event)
                return
            except BosunError as exc:
                if exc.code == 409:  # the task ended without us (aborted with force, force-finished)
                    log.info("job %s: .finished not applied: %s", self.triggered_id, exc.message)
                    return
                if exc.code < 500 and exc.code not in (401, 408, 429):
                    log.warning("job %s: .finished refused: %s", self.triggered_id, exc.message)
                    return
                problem = f"{exc.code}: {exc.message}"
            except Unreachable as exc:
                problem = str(exc)
            # A transient failure (Bosun restarting, a throttle, a proxy's error page): the result is kept and
            # sent again until it is taken, or until the executor stops.
            log.warning("job %s: .finished not sent (%s); again in %gs", self.triggered_id, problem, wait)
            if self.executor.stopping.wait(wait):
                return
            wait = min(wait * 2, 15.0)


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{int(moment % 1 * 1000):03d}Z"


