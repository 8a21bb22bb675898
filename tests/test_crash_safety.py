"""Crash safety: processes SIGKILLed at random points while 200 sequences run, then started again.

Scale-out (PostgreSQL): a web process, an engine and a job executor, each killed several times. Embedded
(SQLite): `manage.py up` with its engine and local executor, killed and started again on the same file.
Afterwards nothing accepted is lost, nothing is stuck, no task is triggered twice, lanes kept FIFO, and
the timeouts of tasks whose executor died still fired (never early).
"""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.helpers import one_stage_shipyard
from tests.test_up import free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]
DATABASE_URL = os.environ.get("DATABASE_URL", "")
LANES = 20
LIMITS = {"startTimeout": "60s", "heartbeatTimeout": "3s"}
SHIPYARD = one_stage_shipyard("crash", [{"name": "deploy", **LIMITS}, {"name": "check", **LIMITS}])
JOBS = """\
kind: Jobs
jobs:
  - task: deploy
    command: [sleep, "0.3"]
  - task: check
    command: [sleep, "0.1"]
"""
TERMINAL = ("finished", "aborted", "timedOut", "superseded")


def moment(value) -> datetime | None:
    """A time as PostgreSQL (datetime) or SQLite (text, UTC) hands it out, comparable."""
    if value is None or isinstance(value, datetime):
        return value and value.replace(tzinfo=None)
    return datetime.fromisoformat(value).replace(tzinfo=None)


class Fleet:
    """The processes under test, by role: started, SIGKILLed and started again, their output appended to logs."""

    def __init__(self, env: dict, work: Path, commands: dict[str, list[str]]):
        self.env, self.work, self.commands = env, work, commands
        self.processes: dict[str, subprocess.Popen] = {}
        self.kills: list[str] = []

    def start(self, role: str):
        log = open(self.work / f"{role}.log", "a")
        self.processes[role] = subprocess.Popen(self.commands[role], cwd=ROOT, env=self.env, stdout=log,
                                                stderr=subprocess.STDOUT)

    def kill(self, role: str):
        process = self.processes[role]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        self.kills.append(role)

    def stop(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def send_triggers(url: str, token: str, count: int, accepted: list, stop_after: threading.Event):
    """4 clients, paced; each event is sent until Bosun answers it (a retry keeps its id: never applied twice)."""
    numbers = iter(range(count))
    lock = threading.Lock()

    def client():
        http = httpx.Client(base_url=url, headers={"x-token": token}, timeout=10)
        for n in numbers:
            event = {"specversion": "1.0", "id": f"crash-{n}", "source": "crash-test",
                     "type": "sh.keptn.event.dev.delivery.triggered",
                     "data": {"project": "crash", "stage": "dev", "service": f"s{n % LANES}"}}
            for _ in range(600):
                try:
                    response = http.post("/api/v1/event", json=event)
                except httpx.TransportError:
                    time.sleep(0.2)
                    continue
                if response.status_code >= 500:
                    time.sleep(0.2)
                    continue
                assert response.status_code in (200, 202), response.text
                with lock:
                    accepted.append(event["id"])
                break
            time.sleep(0.25)
    threads = [threading.Thread(target=client) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    stop_after.set()


def api(url: str, token: str, method: str, path: str, **kwargs):
    response = httpx.request(method, url + path, headers={"x-token": token}, timeout=20, **kwargs)
    assert response.status_code < 300, response.text
    return response


def setup_project(url: str, token: str):
    api(url, token, "POST", "/api/controlPlane/v1/project", json={"name": "crash", "shipyard": SHIPYARD, "jobs": JOBS})
    for i in range(LANES):
        api(url, token, "POST", "/api/controlPlane/v1/project/crash/service", json={"serviceName": f"s{i}"})


def drained(query, seconds: float = 240) -> list:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        active = query(f"SELECT context, state FROM sequences_sequenceexecution WHERE state NOT IN {TERMINAL}")
        if not active:
            return []
        time.sleep(1)
    return active


def check_invariants(query, accepted: list[str], count: int):
    """What a crash must never do, read straight from the database."""
    assert len(set(accepted)) == count, "a trigger was never accepted"
    logged = dict(query("SELECT event_id, count(*) FROM sequences_event WHERE event_id LIKE 'crash-%' "
                        "GROUP BY event_id"))
    assert set(logged) == set(accepted), "an accepted event is missing from the event log"
    assert set(logged.values()) == {1}, "an accepted event was logged twice"
    runs = query("SELECT triggered_id, state FROM sequences_sequenceexecution")
    assert sorted(t for t, _ in runs) == sorted(accepted), "an accepted trigger has no sequence execution, or two"
    assert {state for _, state in runs} <= {"finished", "timedOut"}
    twice = query("SELECT sequence_execution_id, \"index\" FROM sequences_taskexecution "
                  "GROUP BY sequence_execution_id, \"index\" HAVING count(*) > 1")
    assert twice == [], f"tasks triggered twice: {twice[:5]}"
    emitted = query("SELECT event_id FROM sequences_event WHERE type LIKE '%.triggered' AND outcome = 'emitted' "
                    "GROUP BY event_id HAVING count(*) > 1")
    assert emitted == []
    assert query("SELECT count(*) FROM sequences_sequenceexecution WHERE holds_lane")[0][0] == 0
    # Timeouts fired, and never before their deadline.
    timed_out = query("SELECT finished_at, triggered_at, last_heard_at, message FROM sequences_taskexecution "
                      "WHERE state = 'timedOut'")
    for finished_at, triggered_at, last_heard_at, message in timed_out:
        # the shipyard's limits: heartbeatTimeout 3s once started, startTimeout 60s before
        heard = "heartbeat" in message
        since, limit = (last_heard_at, 3) if heard else (triggered_at, 60)
        assert moment(finished_at) >= moment(since) + timedelta(seconds=limit), (finished_at, since, message)
    # FIFO: in each lane, sequences started in the order they were triggered.
    lanes = defaultdict(list)
    for service, run_id, started_at in query("SELECT service, id, started_at FROM sequences_sequenceexecution "
                                             "WHERE started_at IS NOT NULL ORDER BY service, id"):
        lanes[service].append(moment(started_at))
    for service, starts in lanes.items():
        assert starts == sorted(starts), f"lane {service} did not keep trigger order"
    return len(timed_out)


def open_jobs(query) -> int:
    return query("SELECT count(*) FROM sequences_taskexecution WHERE state = 'started' AND claimed_by <> ''")[0][0]


def when_jobs_run(query, seconds: float = 10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not open_jobs(query):
        time.sleep(0.05)


@pytest.mark.skipif(not DATABASE_URL.startswith("postgres"),
                    reason="the scale-out mode: runs with DATABASE_URL (make test-postgres)")
def test_killed_web_engine_and_executor_lose_nothing_on_postgresql(tmp_path):
    import psycopg

    name = f"bosun_crash_{uuid.uuid4().hex[:8]}"
    admin = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    database = DATABASE_URL.rsplit("/", 1)[0] + f"/{name}"
    env = {**os.environ, "DATABASE_URL": database, "BOSUN_DATA_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1",
           "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), "BOSUN_ADMIN_PASSWORD": "Crash-123-x"}
    env.pop("BOSUN_TEST_DATABASE", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    fleet = Fleet(env, tmp_path, {
        "web": [sys.executable, "manage.py", "up", "--no-engine", "--no-executor", "--no-demo", "--port", str(port)],
        "engine": [sys.executable, "manage.py", "run_engine", "--max-sleep", "0.5"],
        "executor": [sys.executable, "-m", "bosun", "executor", "--url", url, "--concurrency", "4",
                     "--work-dir", str(tmp_path / "jobs")],
    })

    def query(sql):
        with psycopg.connect(database) as conn:
            return conn.execute(sql.replace("%", "%%")).fetchall()
    try:
        fleet.start("web")  # it makes the admin user
        wait_for(f"{url}/api/openapi.json")
        token = subprocess.run([sys.executable, "manage.py", "create_token", "admin", "--name", "crash"], cwd=ROOT,
                               env=env, capture_output=True, text=True, check=True).stdout.split()[-1]
        fleet.env = {**env, "BOSUN_TOKEN": token}
        fleet.start("engine")
        fleet.start("executor")
        setup_project(url, token)
        accepted, done = [], threading.Event()
        sender = threading.Thread(target=send_triggers, args=(url, token, 200, accepted, done))
        sender.start()
        rnd = random.Random(7)
        victims = ["web", "engine", "executor"] * 3
        rnd.shuffle(victims)
        for role in victims:
            time.sleep(rnd.uniform(1.0, 3.0))
            if role == "executor":
                when_jobs_run(query)  # killed while it runs jobs: their tasks must time out
            fleet.kill(role)
            time.sleep(rnd.uniform(0.2, 1.0))
            fleet.start(role)
            if role == "web":
                wait_for(f"{url}/api/openapi.json")
        sender.join()
        stuck = drained(query)
        assert stuck == [], f"{len(stuck)} sequences never ended: {stuck[:5]}"
        timed_out = check_invariants(query, accepted, 200)
        assert timed_out >= 1, "no task of a killed executor timed out"
        print(f"\ncrash safety (PostgreSQL): 200 sequences, {len(fleet.kills)} kills "
              f"({', '.join(fleet.kills)}), {timed_out} tasks timed out, 0 events lost, 0 tasks triggered twice")
    finally:
        fleet.stop()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.skipif(DATABASE_URL.startswith("postgres"), reason="the embedded mode runs on SQLite")
def test_killed_embedded_up_loses_nothing_on_its_sqlite_file(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "BOSUN_DATA_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1",
           "BOSUN_ADMIN_PASSWORD": "Crash-123-x"}
    for key in ("DATABASE_URL", "REDIS_URL"):
        env.pop(key, None)
    fleet = Fleet(env, tmp_path, {"up": [sys.executable, "manage.py", "up", "--no-demo", "--port", str(port)]})

    def query(sql):
        with sqlite3.connect(tmp_path / "bosun.sqlite3", timeout=30) as conn:
            return conn.execute(sql).fetchall()
    try:
        fleet.start("up")
        wait_for(f"{url}/api/openapi.json")
        token = (tmp_path / "admin-token").read_text().strip()
        setup_project(url, token)
        accepted, done = [], threading.Event()
        sender = threading.Thread(target=send_triggers, args=(url, token, 200, accepted, done))
        sender.start()
        rnd = random.Random(11)
        for _ in range(3):
            time.sleep(rnd.uniform(2.0, 4.0))
            when_jobs_run(query)
            fleet.kill("up")  # the web server, the engine and (soon after, as it sees) the local executor
            time.sleep(rnd.uniform(0.2, 1.0))
            fleet.start("up")
            wait_for(f"{url}/api/openapi.json")
        sender.join()
        stuck = drained(query)
        assert stuck == [], f"{len(stuck)} sequences never ended: {stuck[:5]}"
        timed_out = check_invariants(query, accepted, 200)
        print(f"\ncrash safety (embedded, SQLite): 200 sequences, {len(fleet.kills)} kills of `up`, "
              f"{timed_out} tasks timed out, 0 events lost, 0 tasks triggered twice")
    finally:
        fleet.stop()
