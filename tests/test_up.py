"""`manage.py up` and `create_token`, run as a person would: real processes, a real port."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            return httpx.get(url, timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {seconds}s")


@pytest.fixture
def server(tmp_path):
    port = free_port()
    # The embedded defaults: no DATABASE_URL, no REDIS_URL, a generated admin password.
    skip = ("DATABASE_URL", "REDIS_URL", "BOSUN_ADMIN_PASSWORD")
    env = {k: v for k, v in os.environ.items() if k not in skip} | {"PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
    log = tmp_path / "up.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "up", "--port", str(port), "--data-dir", str(tmp_path / "data")],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        wait_for(f"http://127.0.0.1:{port}/api/openapi.json")
        yield process, port, log, tmp_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_usr1_makes_up_write_what_each_thread_is_doing_and_go_on_serving(server):
    process, port, log, _ = server
    process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 20
    while "sequences/engine.py" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    output = log.read_text()
    assert "(most recent call first)" in output and "sequences/engine.py" in output  # the engine thread's stack
    assert process.poll() is None
    assert httpx.get(f"http://127.0.0.1:{port}/api/openapi.json").status_code == 200


def test_up_serves_the_api_with_the_demo_project_and_stops_cleanly_on_ctrl_c(server):
    process, port, log, tmp_path = server
    output = log.read_text()
    password = re.search(r"Created user 'admin' with password: (\S+)", output).group(1)
    token = re.search(r"API token for admin: (bsn_\S+)", output).group(1)
    assert (tmp_path / "data" / "bosun.sqlite3").exists()
    base = f"http://127.0.0.1:{port}"
    project = httpx.get(f"{base}/api/controlPlane/v1/project/sockshop", headers={"x-token": token}).json()
    assert [s["stageName"] for s in project["stages"]] == ["dev", "staging", "production"]
    assert [s["serviceName"] for s in project["stages"][0]["services"]] == ["carts", "orders"]
    trigger = httpx.post(f"{base}/api/v1/event", headers={"x-token": token}, json={
        "type": "sh.keptn.event.dev.delivery.triggered",
        "data": {"project": "sockshop", "stage": "dev", "service": "carts"}})
    assert trigger.status_code == 202
    with httpx.Client(base_url=base, follow_redirects=True) as browser:
        login = browser.get("/bridge/")
        assert "Log in to Bosun" in login.text
        csrf = browser.cookies["csrftoken"]
        home = browser.post("/accounts/login/?next=/bridge/", data={
            "username": "admin", "password": password, "csrfmiddlewaretoken": csrf, "next": "/bridge/"})
        assert "sockshop" in home.text
        assert browser.get("/static/bridge/bosun.css").status_code == 200
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=15) == 0
    assert "Bosun stopped." in log.read_text()


def test_create_token_prints_a_working_token(server):
    process, port, log, tmp_path = server
    env = {**os.environ, "BOSUN_DATA_DIR": str(tmp_path / "data")}
    env.pop("DATABASE_URL", None)
    result = subprocess.run([sys.executable, "manage.py", "create_token", "admin", "--name", "ci"],
                            cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    token = result.stdout.strip()
    assert token.startswith("bsn_")
    response = httpx.get(f"http://127.0.0.1:{port}/api/controlPlane/v1/project", headers={"x-token": token})
    assert response.status_code == 200
    missing = subprocess.run([sys.executable, "manage.py", "create_token", "nobody"], cwd=ROOT, env=env,
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "There is no user 'nobody'" in missing.stderr


def test_the_engine_runs_inside_up_and_times_out_an_unanswered_task(server):
    process, port, log, tmp_path = server
    token = re.search(r"API token for admin: (bsn_\S+)", log.read_text()).group(1)
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"x-token": token})
    shipyard = ("apiVersion: spec.keptn.sh/0.2.3\nkind: Shipyard\nmetadata: {name: quick}\nspec:\n  stages:\n"
                "    - name: dev\n      sequences:\n        - name: delivery\n"
                "          tasks: [{name: deployment, startTimeout: 1s}]\n")
    assert http.post("/api/controlPlane/v1/project", json={"name": "quick", "shipyard": shipyard}).status_code == 201
    http.post("/api/controlPlane/v1/project/quick/service", json={"serviceName": "carts"})
    context = http.post("/api/v1/event", json={"type": "sh.keptn.event.dev.delivery.triggered", "data": {
        "project": "quick", "stage": "dev", "service": "carts"}}).json()["keptnContext"]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = http.get("/api/controlPlane/v1/sequence-execution",
                         params={"project": "quick", "keptnContext": context}).json()["sequenceExecutions"][0]
        if found["status"]["state"] == "timedOut":
            break
        time.sleep(0.1)
    assert found["status"]["state"] == "timedOut"
    assert found["status"]["message"] == "No executor started task 'deployment' within 1s."


def test_up_runs_demo_deliveries_with_its_own_executor_and_keeps_its_tokens_across_restarts(server):
    process, port, log, tmp_path = server
    token = re.search(r"API token for admin: (bsn_\S+)", log.read_text()).group(1)
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"x-token": token}, timeout=10)

    def deliver(service, **labels):
        return http.post("/api/v1/event", json={"type": "sh.keptn.event.dev.delivery.triggered", "data": {
            "project": "sockshop", "stage": "dev", "service": service, "labels": labels,
            "configurationChange": {"values": {"image": f"docker.io/keptnexamples/{service}:0.13.1"}}}}
        ).json()["keptnContext"]

    good, bad = deliver("carts"), deliver("orders", fail="true")

    def stages(context):
        runs = http.get("/api/controlPlane/v1/sequence-execution",
                        params={"project": "sockshop", "keptnContext": context, "pageSize": 10}).json()
        return {(r["scope"]["stage"], r["sequence"]["name"]): (r["status"]["state"], r["scope"]["result"])
                for r in runs["sequenceExecutions"]}

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if len(stages(good)) == 3 and len(stages(bad)) == 4 and all(
                s == "finished" for s, _ in [*stages(good).values(), *stages(bad).values()]):
            break
        time.sleep(0.5)
    assert stages(good) == {("dev", "delivery"): ("finished", "pass"), ("staging", "delivery"): ("finished", "pass"),
                            ("production", "delivery"): ("finished", "pass")}
    assert stages(bad)[("production", "delivery")] == ("finished", "fail")
    assert stages(bad)[("production", "rollback")] == ("finished", "pass")
    test_task = next(t for t in http.get("/api/controlPlane/v1/sequence-execution", params={
        "project": "sockshop", "keptnContext": bad, "stage": "production", "name": "delivery"}).json()[
        "sequenceExecutions"][0]["status"]["previousTasks"] if t["name"] == "test")
    assert "FAIL  checkout" in http.get(f"/api/controlPlane/v1/task/{test_task['triggeredID']}/log").text

    # a restart on the same data keeps the printed token (and the executor's) working
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 0
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "BOSUN_ADMIN_PASSWORD")}
    with open(tmp_path / "again.log", "w") as out:
        again = subprocess.Popen([sys.executable, "manage.py", "up", "--port", str(port), "--data-dir",
                                  str(tmp_path / "data")], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{port}/api/openapi.json")
        assert re.search(r"API token for admin: (bsn_\S+)", (tmp_path / "again.log").read_text()).group(1) == token
        assert http.get("/api/controlPlane/v1/project").status_code == 200
        third = deliver("carts")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and stages(third).get(("dev", "delivery"), ("",))[0] != "finished":
            time.sleep(0.5)
        assert stages(third)[("dev", "delivery")] == ("finished", "pass")
    finally:
        again.send_signal(signal.SIGINT)
        again.wait(timeout=20)


def test_make_run_serves_on_the_port_it_is_given(tmp_path):
    port = free_port()
    skip = ("DATABASE_URL", "REDIS_URL", "MAKEFLAGS", "MAKELEVEL")
    env = {k: v for k, v in os.environ.items() if k not in skip} | {
        "BOSUN_DATA_DIR": str(tmp_path / "data"), "BOSUN_RUN_EXECUTOR": "false", "PYTHONUNBUFFERED": "1"}
    with open(tmp_path / "run.log", "w") as out:
        process = subprocess.Popen(["make", "--no-print-directory", "run", f"PORT={port}"], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        answer = wait_for(f"http://127.0.0.1:{port}/api/openapi.json", seconds=60)
        assert answer.status_code == 200
        assert f"Bosun is up on http://127.0.0.1:{port}/bridge/" in (tmp_path / "run.log").read_text()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
