"""Scale-out under load: 2 web processes and 2 engines on PostgreSQL and Redis, 8 clients, 50 lanes.

Triggers, executors' events, pauses, resumes, aborts and kills interleave; short start timeouts fire. The
lane rules must hold throughout and at the end: one holder per lane, no task triggered twice, every
accepted event in the log exactly once, every sequence ended, FIFO for sequences nobody touched.
"""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.test_up import free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]
DATABASE_URL = os.environ.get("DATABASE_URL", "")
pytestmark = pytest.mark.skipif(not DATABASE_URL.startswith("postgres"),
                                reason="the scale-out mode: runs with DATABASE_URL (make test-postgres)")
SHIPYARD = """\
apiVersion: spec.keptn.sh/0.2.3
kind: Shipyard
metadata: {name: scale}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deploy, startTimeout: 4s}, {name: check, startTimeout: 4s}]
        - name: hotfix
          queue: cancel-in-progress
          tasks: [{name: deploy, startTimeout: 4s}]
"""
LANES = 50
EVENTS = 1000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A fresh PostgreSQL database, 2 web processes (no engine) and 2 engines."""
    name = f"bosun_scale_{uuid.uuid4().hex[:8]}"
    admin = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    work = tmp_path_factory.mktemp("scale")
    env = {**os.environ, "DATABASE_URL": DATABASE_URL.rsplit("/", 1)[0] + f"/{name}",
           "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), "BOSUN_ADMIN_PASSWORD": "Scale-123-x",
           "BOSUN_DATA_DIR": str(work), "BOSUN_RUN_EXECUTOR": "false", "PYTHONUNBUFFERED": "1",
           "BOSUN_WEBHOOK_ALLOWED": "127.0.0.0/8"}
    env.pop("BOSUN_TEST_DATABASE", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    processes, urls = [], []
    for k in range(2):
        port = free_port()
        processes.append(subprocess.Popen([sys.executable, "manage.py", "up", "--no-engine", "--no-executor",
                                           "--no-demo", "--port", str(port)], cwd=ROOT, env=env,
                                          stdout=open(work / f"web{k}.log", "w"), stderr=subprocess.STDOUT))
        urls.append(f"http://127.0.0.1:{port}")
        wait_for(f"{urls[-1]}/api/openapi.json")
    for k in range(2):
        processes.append(subprocess.Popen([sys.executable, "manage.py", "run_engine", "--max-sleep", "0.5"], cwd=ROOT,
                                          env=env, stdout=open(work / f"engine{k}.log", "w"),
                                          stderr=subprocess.STDOUT))
    token = subprocess.run([sys.executable, "manage.py", "create_token", "admin", "--name", "scale"], cwd=ROOT,
                           env=env, capture_output=True, text=True, check=True).stdout.split()[-1]
    try:
        yield {"urls": urls, "token": token, "database": env["DATABASE_URL"], "env": env, "work": work,
               "processes": processes}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_two_webs_and_two_engines_keep_the_lane_rules_under_load(cluster):
    clients = [httpx.Client(base_url=url, headers={"x-token": cluster["token"]}, timeout=30) for url in cluster["urls"]]
    setup = clients[0]
    assert setup.post("/api/controlPlane/v1/project", json={"name": "scale", "shipyard": SHIPYARD}).status_code == 201
    for i in range(LANES):
        setup.post("/api/controlPlane/v1/project/scale/service", json={"serviceName": f"s{i}"}).raise_for_status()

    accepted: list[str] = []
    touched: set[str] = set()  # contexts someone paused, aborted or killed: FIFO is not asked of them
    lock = threading.Lock()
    sent = iter(range(EVENTS))
    overlaps = []

    def worker(k):
        rnd = random.Random(k)
        http = clients[k % 2]
        for _ in sent:
            roll = rnd.random()
            if roll < 0.45:
                sequence = "hotfix" if roll < 0.05 else "delivery"  # aborts the lane's running hotfix
                event = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": f"c{k}",
                         "type": f"sh.keptn.event.dev.{sequence}.triggered",
                         "data": {"project": "scale", "stage": "dev", "service": f"s{rnd.randrange(LANES)}"}}
                response = http.post("/api/v1/event", json=event)
                assert response.status_code == 202, response.text
                with lock:
                    accepted.append(event["id"])
                continue
            kind = rnd.choice(["deploy", "check"])
            open_tasks = http.get(f"/api/controlPlane/v1/event/triggered/sh.keptn.event.{kind}.triggered",
                                  params={"project": "scale"}).json()["events"]
            if not open_tasks:
                continue
            task = rnd.choice(open_tasks)
            context = task["shkeptncontext"]
            if roll < 0.85:
                for step in ("started", "finished"):
                    event = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": f"x{k}",
                             "shkeptncontext": context, "triggeredid": task["id"], "type": f"sh.keptn.event.{kind}.{step}",
                             "data": {"result": rnd.choice(["pass", "pass", "pass", "fail"]), "status": "succeeded"}}
                    response = http.post("/api/v1/event", json=event)
                    assert response.status_code in (202, 409), response.text
                    if response.status_code == 202:
                        with lock:
                            accepted.append(event["id"])
            else:
                with lock:
                    touched.add(context)
                command = rnd.choice(["pause", "resume", "abort", "abort-force", "kill"])
                if command == "kill":
                    response = http.post(f"/api/controlPlane/v1/task/{task['id']}/kill", json={"reason": "load"})
                else:
                    state, _, mode = command.partition("-")
                    response = http.post(f"/api/controlPlane/v1/sequence/scale/{context}/control",
                                         json={"state": state, **({"mode": mode} if mode else {})})
                assert response.status_code in (200, 409), response.text

    def watch(stop):
        with psycopg.connect(cluster["database"]) as conn:
            while not stop.is_set():
                rows = conn.execute("SELECT service, count(DISTINCT context) FROM sequences_sequenceexecution "
                                    "WHERE holds_lane GROUP BY service HAVING count(DISTINCT context) > 1").fetchall()
                overlaps.extend(rows)
                conn.rollback()
                time.sleep(0.05)

    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(stop,))
    watcher.start()
    failures = []

    def guarded(k):
        try:
            worker(k)
        except Exception as exc:  # a 5xx or a wrong answer, reported below rather than lost in a thread
            failures.append(f"client {k}: {exc}")

    threads = [threading.Thread(target=guarded, args=(k,)) for k in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]

    # Drain: resume what is paused; the 4 s start timeouts end whatever nobody starts.
    deadline = time.time() + 120
    while time.time() < deadline:
        with psycopg.connect(cluster["database"]) as conn:
            active = conn.execute("SELECT context, state FROM sequences_sequenceexecution WHERE state NOT IN "
                                  "('finished','aborted','timedOut','superseded')").fetchall()
        if not active:
            break
        for context, state in active:
            if state == "paused":
                setup.post(f"/api/controlPlane/v1/sequence/scale/{context}/control", json={"state": "resume"})
        time.sleep(1)
    stop.set()
    watcher.join()

    assert failures == [], failures[:3]
    assert overlaps == [], f"two contexts held a lane at once: {overlaps[:5]}"
    with psycopg.connect(cluster["database"]) as conn:
        stuck = conn.execute("SELECT context, state FROM sequences_sequenceexecution WHERE state NOT IN "
                             "('finished','aborted','timedOut','superseded')").fetchall()
        assert stuck == [], f"{len(stuck)} sequences never ended: {stuck[:5]}"
        twice = conn.execute("SELECT sequence_execution_id, index FROM sequences_taskexecution "
                             "GROUP BY sequence_execution_id, index HAVING count(*) > 1").fetchall()
        assert twice == [], f"tasks triggered twice: {twice[:5]}"
        triggered_twice = conn.execute(
            "SELECT event_id FROM sequences_event WHERE type LIKE '%%.triggered' AND outcome = 'emitted' "
            "GROUP BY event_id HAVING count(*) > 1").fetchall()
        assert triggered_twice == []
        counts = dict(conn.execute("SELECT event_id, count(*) FROM sequences_event WHERE event_id = ANY(%s) "
                                   "GROUP BY event_id", (accepted,)).fetchall())
        assert len(accepted) >= 300
        assert all(counts.get(event_id) == 1 for event_id in accepted), "an accepted event is missing or doubled"
        # hotfixes jump their lane's queue (cancel-in-progress); deliveries keep trigger order among themselves
        runs = conn.execute("SELECT service, id, started_at, context FROM sequences_sequenceexecution "
                            "WHERE started_at IS NOT NULL AND name = 'delivery' ORDER BY service, id").fetchall()
        ends = dict(conn.execute("SELECT state, count(*) FROM sequences_sequenceexecution GROUP BY state").fetchall())
        policy = conn.execute("SELECT count(*) FROM sequences_controlaction WHERE actor = 'queue policy'").fetchone()[0]
    by_lane = defaultdict(list)
    for service, run_id, started_at, context in runs:
        if context not in touched:
            by_lane[service].append((run_id, started_at))
    for service, lane in by_lane.items():
        starts = [started for _, started in lane]
        assert starts == sorted(starts), f"lane {service} did not start its untouched sequences in trigger order"
    print(f"\nscale-out: {EVENTS} actions from 8 clients, {len(accepted)} events accepted, each logged once; "
          f"sequences by end state {ends}; {policy} queue-policy actions; 0 overlaps, 0 tasks triggered twice")


def _page_session(url: str) -> str:
    """Log in to the Bridge as a person would; returns the session cookie."""
    import re

    with httpx.Client(base_url=url, timeout=10) as browser:
        form = browser.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        answer = browser.post("/accounts/login/", data={"username": "admin", "password": "Scale-123-x",
                                                         "csrfmiddlewaretoken": token})
        assert answer.status_code == 302, answer.text[:300]
        return browser.cookies["sessionid"]


def test_a_timeout_the_engine_fires_reaches_an_open_page_and_an_executor_s_socket(cluster):
    """The engine runs apart from the web processes: what it changes travels through Redis to their sockets."""
    from websockets.sync.client import connect

    web = cluster["urls"][0]
    api = httpx.Client(base_url=web, headers={"x-token": cluster["token"]}, timeout=10)
    shipyard = SHIPYARD.replace("name: scale", "name: timers").replace("startTimeout: 4s", "startTimeout: 2s")
    assert api.post("/api/controlPlane/v1/project", json={"name": "timers", "shipyard": shipyard}).status_code == 201
    assert api.post("/api/controlPlane/v1/project/timers/service", json={"serviceName": "carts"}).status_code == 201
    context = str(uuid.uuid4())
    marks = {log: log.stat().st_size for log in cluster["work"].glob("*.log")}
    ws = web.replace("http://", "ws://")
    # Both sockets open before the trigger: the start timeout (2 s) cannot fire before they listen.
    with connect(f"{ws}/ws/live/?context={context}", origin=web, open_timeout=10,
                 additional_headers={"Cookie": f"sessionid={_page_session(web)}"}) as page, \
            connect(f"{ws}/ws/executor/?project=timers", additional_headers={"x-token": cluster["token"]},
                    open_timeout=10) as executor:
        answer = api.post("/api/v1/event", json={"type": "sh.keptn.event.dev.delivery.triggered", "source": "test",
                                                 "shkeptncontext": context,
                                                 "data": {"project": "timers", "stage": "dev", "service": "carts"}})
        assert answer.status_code == 202
        # the web process's own push of the trigger (one commit: one notice to each socket)
        assert context in page.recv(timeout=20)
        assert json.loads(executor.recv(timeout=20)) == {"event": "changed", "project": "timers"}
        # from here on only the engine changes anything: its start timeout fires after 2 s
        timed_out = ""
        try:
            while "Timed out" not in timed_out:
                timed_out = page.recv(timeout=30)
            assert json.loads(executor.recv(timeout=30)) == {"event": "changed", "project": "timers"}
        except TimeoutError:
            pytest.fail("the engine's start timeout never reached a socket\n" + _why(cluster, marks, context),
                        pytrace=False)
    state = api.get("/api/controlPlane/v1/sequence-execution", params={"project": "timers", "keptnContext": context})
    assert state.json()["sequenceExecutions"][0]["status"]["state"] == "timedOut"


def _why(cluster, marks, context) -> str:
    """For a failure's message: the run's task as stored, what holds the database, and what each web process
    and engine wrote since `marks` (each log's size when the test began), ending with the stacks of its
    threads (`kill -USR1`)."""
    with psycopg.connect(cluster["database"]) as conn:
        task = conn.execute("SELECT t.state, t.start_deadline, now(), t.engine_failures, t.engine_error, r.state "
                            "FROM sequences_taskexecution t JOIN sequences_sequenceexecution r "
                            "ON r.id = t.sequence_execution_id WHERE r.context = %s", (context,)).fetchall()
        busy = conn.execute("SELECT pid, state, now() - xact_start, wait_event_type, left(query, 100) "
                            "FROM pg_stat_activity WHERE datname = current_database() AND state <> 'idle' "
                            "AND pid <> pg_backend_pid()").fetchall()
    logs = sorted(cluster["work"].glob("*.log"))
    for process in cluster["processes"]:
        process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all("most recent call first" in log.read_text(errors="replace")[
            marks.get(log, 0):] for log in logs):
        time.sleep(0.2)
    lines = [f"task (state, start deadline, now, engine failures, engine error, run state): {task}",
             f"busy connections: {busy}"]
    for log in logs:
        new = log.read_text(errors="replace")[marks.get(log, 0):].splitlines()
        keep = [line for line in new if "scale/" not in line]  # the load test's lingering lines say nothing here
        lines += [f"--- {log.name} since the test began ({len(new)} lines)", *_condensed(keep)[-50:]]
    return "\n".join(lines)


def _condensed(lines: list[str]) -> list[str]:
    """A thread's stack cut to where it waits (its innermost frame) and Bosun's own frames."""
    kept, innermost = [], False
    for line in lines:
        frame = line.startswith('  File "')
        if not frame or innermost or str(ROOT / ".venv") not in line and str(ROOT) in line:
            kept.append(line.replace(str(ROOT) + "/", ""))
        innermost = line.endswith("(most recent call first):")
    return kept


def _manage(cluster, *args) -> str:
    """A management command in a process of its own, as an operator at a shell would run it."""
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=cluster["env"], capture_output=True,
                          text=True, check=True).stdout


def test_a_revoked_token_and_a_removed_permission_hold_in_every_web_process_once_changed(cluster):
    token = _manage(cluster, "create_token", "admin", "--name", "short-lived").split()[-1]
    first, second = (httpx.Client(base_url=url, headers={"x-token": token}, timeout=10) for url in cluster["urls"])
    for web in (first, second):  # both processes now hold the token's lookup in memory
        assert web.get("/api/controlPlane/v1/project").status_code == 200
    _manage(cluster, "shell", "-c", "from sequences.models import ApiToken; from django.utils import timezone; "
                                   "t = ApiToken.objects.get(name='short-lived'); t.revoked_at = timezone.now(); "
                                   "t.save(update_fields=['revoked_at'])")
    assert [web.get("/api/controlPlane/v1/project").status_code for web in (first, second)] == [401, 401]

    _manage(cluster, "shell", "-c", "from django.contrib.auth.models import User, Permission; "
                                              "u = User.objects.create_user('op2'); u.user_permissions.add("
                                              "Permission.objects.get(codename='operate_sequences'))")
    key = _manage(cluster, "create_token", "op2", "--name", "op2").split()[-1]
    body = {"type": "sh.keptn.event.dev.delivery.triggered", "source": "test",
            "data": {"project": "nothing-here", "stage": "dev", "service": "carts"}}
    clients = [httpx.Client(base_url=url, headers={"x-token": key}, timeout=10) for url in cluster["urls"]]
    assert [web.post("/api/v1/event", json=body).status_code for web in clients] == [404, 404]  # may operate
    _manage(cluster, "shell", "-c", "from django.contrib.auth.models import User; "
                                   "User.objects.get(username='op2').user_permissions.clear()")
    assert [web.post("/api/v1/event", json=body).status_code for web in clients] == [403, 403]


def test_a_webhook_made_in_one_web_process_gets_the_next_event_another_accepts(cluster):
    first, second = (httpx.Client(base_url=url, headers={"x-token": cluster["token"]}, timeout=10)
                     for url in cluster["urls"])
    shipyard = SHIPYARD.replace("name: scale", "name: hooks")
    assert first.post("/api/controlPlane/v1/project", json={"name": "hooks", "shipyard": shipyard}).status_code == 201
    assert first.post("/api/controlPlane/v1/project/hooks/service", json={"serviceName": "carts"}).status_code == 201
    trigger = {"type": "sh.keptn.event.dev.delivery.triggered", "source": "test",
               "data": {"project": "hooks", "stage": "dev", "service": "carts"}}
    assert second.post("/api/v1/event", json=trigger).status_code == 202  # its webhook cache: none for hooks
    made = first.post("/api/controlPlane/v1/project/hooks/webhook",
                      json={"url": f"http://127.0.0.1:{free_port()}/hook", "events": []})
    assert made.status_code == 201, made.text
    hook = made.json()["id"]
    context = second.post("/api/v1/event", json=trigger).json()["keptnContext"]
    deliveries = second.get(f"/api/controlPlane/v1/project/hooks/webhook/{hook}/delivery",
                            params={"pageSize": 100}).json()["deliveries"]
    events = {d["eventId"] for d in deliveries}
    log = second.get("/api/v1/event", params={"keptnContext": context}).json()["events"]
    triggered = next(e["id"] for e in log if e["type"] == "sh.keptn.event.dev.delivery.triggered")
    assert triggered in events
