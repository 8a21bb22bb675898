"""Job definitions: which command the job executor runs for which task. Parsed and validated here (no ORM).

A project's jobs are YAML, uploaded with the project (API) or edited in admin:

    kind: Jobs                      # optional
    jobs:
      - task: test                  # the task name in the shipyard
        stages: [dev, staging]      # optional: only in these stages
        services: [carts]           # optional: only for these services
        command: [python3, run_tests.py, --fast]   # argv, never a shell string
        workingDir: /srv/tests      # optional; default: the run's own temporary folder
        env: {SUITE: smoke}         # optional, strings
        timeout: 10m                # optional: the job is killed past it
        killGrace: 5s               # optional (default 5s): SIGTERM, then SIGKILL after this

Every error names the line and the field, as for shipyards. The first job that matches a task runs it.
"""

import re
from dataclasses import dataclass, field

from sequences.rules import yamlsafe
from sequences.rules.durations import parse_duration
from sequences.rules.shipyard import TASK_NAME_RE
from sequences.rules.yamlsafe import Locator

DEFAULT_KILL_GRACE = 5.0
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The longest a job may run, and the longest its processes get between SIGTERM and SIGKILL.
LIMITS = {"timeout": 7 * 24 * 3600.0, "killGrace": 600.0}
LIMIT_WORDS = {"timeout": "168h (a week)", "killGrace": "10m"}
KEYS = {"name", "task", "stages", "services", "command", "workingDir", "env", "timeout", "killGrace"}


class JobsError(ValueError):
    """Job definitions that cannot be used; the message names the line and the field."""


@dataclass(frozen=True)
class Job:
    name: str
    task: str
    command: tuple[str, ...]
    stages: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    working_dir: str = ""
    env: dict = field(default_factory=dict)
    timeout: float | None = None
    kill_grace: float = DEFAULT_KILL_GRACE

    def matches(self, task: str, stage: str, service: str) -> bool:
        return (self.task == task and (not self.stages or stage in self.stages)
                and (not self.services or service in self.services))

    def as_json(self) -> dict:
        """The shape executors read (GET .../project/{project}/jobs)."""
        return {"name": self.name, "task": self.task, "stages": list(self.stages), "services": list(self.services),
                "command": list(self.command), "workingDir": self.working_dir, "env": dict(self.env),
                "timeout": self.timeout, "killGrace": self.kill_grace}


def parse(text: str) -> list[Job]:
    """YAML text -> jobs (an empty text is no jobs), or JobsError naming the line and the field."""
    if not isinstance(text, str) or not text.strip():
        return []
    root, data = yamlsafe.load(text, JobsError)
    if root is None:
        return []
    locator = Locator(root)

    def fail(path, message):
        raise JobsError(f"line {locator.line(path)}: {path or 'document'}: {message}")

    if not isinstance(data, dict):
        fail("", "must be a mapping with a list of jobs under 'jobs'")
    if data.get("kind", "Jobs") != "Jobs":
        fail("kind", f"must be Jobs, not {data.get('kind')!r}")
    raw_jobs = data.get("jobs")
    if not isinstance(raw_jobs, list):
        fail("jobs", "must be a list of jobs")
    jobs, names = [], set()
    for i, raw in enumerate(raw_jobs):
        path = f"jobs[{i}]"
        if not isinstance(raw, dict):
            fail(path, "must be a mapping with task and command")
        unknown = sorted(set(map(str, raw)) - KEYS)
        if unknown:
            fail(f"{path}.{unknown[0]}", f"is not a job field; use {', '.join(sorted(KEYS))}")
        task = raw.get("task")
        if not isinstance(task, str) or not TASK_NAME_RE.match(task):
            fail(f"{path}.task", "is required: the name of a task in the shipyard")
        name = raw.get("name", task)
        if not isinstance(name, str) or not name.strip():
            fail(f"{path}.name", "must be a non-empty string")
        if name in names:
            fail(f"{path}.name", f"'{name}' is used by another job; give each job its own name")
        names.add(name)
        command = raw.get("command")
        if isinstance(command, str):
            fail(f"{path}.command", "must be a list of arguments (argv), e.g. [python3, deploy.py], not a shell "
                                    "string")
        if not isinstance(command, list) or not command or not all(isinstance(a, (str, int, float)) for a in command):
            fail(f"{path}.command", "must be a non-empty list of arguments, e.g. [python3, deploy.py]")
        if any("\x00" in str(a) for a in command):
            fail(f"{path}.command", "contains a NUL character, which no program can be given")
        lists = {}
        for key in ("stages", "services"):
            value = raw.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                fail(f"{path}.{key}", "must be a list of names")
            lists[key] = tuple(value)
        working_dir = raw.get("workingDir") or ""
        if not isinstance(working_dir, str) or "\x00" in working_dir:
            fail(f"{path}.workingDir", "must be a path")
        env = raw.get("env") or {}
        if not isinstance(env, dict):
            fail(f"{path}.env", "must be a mapping of names to strings")
        for key, value in env.items():
            if not isinstance(key, str) or not ENV_NAME_RE.match(key):
                fail(f"{path}.env", f"{key!r} is not an environment variable name")
            if not isinstance(value, (str, int, float, bool)):
                fail(f"{path}.env.{key}", "must be a string")
            if "\x00" in str(value):
                fail(f"{path}.env.{key}", "contains a NUL character, which no environment can hold")
        durations = {}
        for key in ("timeout", "killGrace"):
            if raw.get(key) is None:
                continue
            try:
                durations[key] = parse_duration(raw[key])
            except ValueError as exc:
                fail(f"{path}.{key}", str(exc))
            if durations[key] <= 0 or durations[key] > LIMITS[key]:
                fail(f"{path}.{key}", f"must be more than 0s and at most {LIMIT_WORDS[key]}")
        jobs.append(Job(
            name=name, task=task, command=tuple(str(a) for a in command), stages=lists["stages"],
            services=lists["services"], working_dir=working_dir,
            env={k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in env.items()},
            timeout=durations.get("timeout"), kill_grace=durations.get("killGrace", DEFAULT_KILL_GRACE),
        ))
    return jobs


def find(jobs: list[Job], task: str, stage: str, service: str) -> Job | None:
    return next((job for job in jobs if job.matches(task, stage, service)), None)
