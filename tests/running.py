"""A real `manage.py up` in a subprocess, real `bosun executor`s against it, and jobs as Python snippets."""

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import one_stage_shipyard
from tests.test_up import ROOT, free_port, wait_for

logging.getLogger("httpx").setLevel(logging.WARNING)


# Jobs run as `nobody` when the tests run as root: a Python that user can run (the test's own may live in
# /root, which only root can reach).
JOB_PYTHON = "/usr/bin/python3" if os.geteuid() == 0 and os.path.exists("/usr/bin/python3") else sys.executable


def python_job(task: str, script: str, **fields) -> dict:
    return {"task": task, "command": [JOB_PYTHON, "-c", textwrap.dedent(script)], **fields}


def shared_dir() -> Path:
    """A folder both the test and its jobs (another OS user) can read and write."""
    path = Path(tempfile.mkdtemp(prefix="bosun-test-shared-"))
    path.chmod(0o1777)
    return path


class Bosun:
    """A running `manage.py up` (no demo, no executor of its own) and an admin's API client."""

    def __init__(self, port: int, token: str, data: Path):
        self.base = f"http://127.0.0.1:{port}"
        self.token = token
        self.data = data
        self.http = httpx.Client(base_url=self.base, headers={"x-token": token}, timeout=10)
        self.executors: list[subprocess.Popen] = []

    def project(self, name: str, tasks: list[dict], jobs: list[dict], services=("carts",)):
        response = self.http.post("/api/controlPlane/v1/project", json={
            "name": name, "shipyard": one_stage_shipyard(name, tasks),
            "jobs": json.dumps({"kind": "Jobs", "jobs": jobs})})
        assert response.status_code == 201, response.text
        for service in services:
            assert self.http.post(f"/api/controlPlane/v1/project/{name}/service",
                                  json={"serviceName": service}).status_code == 201

    def executor(self, project: str, name: str, tmp_path: Path, concurrency: int = 2, url: str | None = None,
                 args=(), env=None) -> subprocess.Popen:
        """A `bosun executor` of this server (or of `url`, a proxy in front of it); its output in tmp_path."""
        log = open(tmp_path / f"{name}.log", "w")
        process = subprocess.Popen(
            [sys.executable, "-m", "bosun", "executor", "--url", url or self.base, "--project", project,
             "--name", name, "--concurrency", str(concurrency), "--work-dir", tempfile.mkdtemp(prefix=f"{name}-"),
             *args],
            env={**os.environ, "BOSUN_TOKEN": self.token, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
            cwd=ROOT)
        self.executors.append(process)
        return process

    def trigger(self, project: str, service: str = "carts", **data) -> str:
        response = self.http.post("/api/v1/event", json={
            "type": "sh.keptn.event.dev.delivery.triggered", "source": "test",
            "data": {"project": project, "stage": "dev", "service": service, **data}})
        assert response.status_code == 202, response.text
        return response.json()["keptnContext"]

    def execution(self, project: str, context: str) -> dict:
        return self.http.get("/api/controlPlane/v1/sequence-execution",
                             params={"project": project, "keptnContext": context}).json()["sequenceExecutions"][0]

    def wait(self, what, seconds: float = 20, every: float = 0.05):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = what()
            if found:
                return found
            time.sleep(every)
        raise AssertionError(f"not within {seconds}s: {getattr(what, '__doc__', None) or what}")

    def state(self, project: str, context: str) -> str:
        return self.execution(project, context)["status"]["state"]

    def current_task(self, project: str, context: str) -> dict | None:
        return self.execution(project, context)["status"]["currentTask"]

    def task(self, triggered_id: str) -> dict:
        return self.http.get(f"/api/controlPlane/v1/task/{triggered_id}").json()

    def log(self, triggered_id: str) -> str:
        return self.http.get(f"/api/controlPlane/v1/task/{triggered_id}/log").text

    def running_task(self, project: str, context: str, marker: str) -> dict:
        """The current task, once its job has printed `marker`."""
        def started():
            task = self.current_task(project, context)
            return task if task and marker in self.log(task["triggeredID"]) else None
        return self.wait(started)

    def control(self, project: str, context: str, **body):
        return self.http.post(f"/api/controlPlane/v1/sequence/{project}/{context}/control", json=body)


@pytest.fixture(scope="module")
def bosun(tmp_path_factory):
    data = tmp_path_factory.mktemp("executor-server")
    port = free_port()
    skip = ("DATABASE_URL", "REDIS_URL")
    env = {k: v for k, v in os.environ.items() if k not in skip} | {"PYTHONUNBUFFERED": "1",
                                                                      "BOSUN_ADMIN_PASSWORD": "executor-tests"}
    with open(data / "up.log", "w") as out:
        server = subprocess.Popen([sys.executable, "manage.py", "up", "--port", str(port), "--no-demo",
                                   "--no-executor", "--data-dir", str(data / "data")],
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{port}/api/openapi.json")
        token = (data / "data" / "admin-token").read_text().strip()
        running = Bosun(port, token, data)
        yield running
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture
def executors(bosun):
    yield bosun
    for process in bosun.executors:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
    bosun.executors.clear()


def gone(pid: int) -> bool:
    """No such process (a zombie nobody reaped yet counts as alive here: os.kill succeeds on it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def wait_until(what, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds}s: {what}")
