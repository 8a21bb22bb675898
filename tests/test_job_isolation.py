"""A job is code that a project's job definitions run on an executor host: defining jobs is a permission of its
own, and a job never reaches the server's secrets (its environment, its data directory, its tokens)."""

import json
import os
import signal
import subprocess
import sys

import httpx
import pytest

from sequences.demo import DEMO_SHIPYARD
from sequences.models import Project
from tests.helpers import one_stage_shipyard
from tests.running import JOB_PYTHON, wait_until
from tests.test_up import ROOT, free_port, wait_for

JOBS = "kind: Jobs\njobs:\n  - task: deployment\n    command: [id]\n"


# --- defining jobs needs its own permission ---------------------------------------------------


def test_a_project_manager_may_not_define_jobs(manager_api, sockshop):
    refused = manager_api.put("/api/controlPlane/v1/project/sockshop", {"jobs": JOBS})
    assert refused.status_code == 403
    assert refused.json()["message"] == ("User 'manager' may not define jobs (commands that executors run); "
                                         "ask an admin for the permission.")
    assert Project.objects.get(name="sockshop").jobs == ""
    created = manager_api.post("/api/controlPlane/v1/project", {"name": "shop", "shipyard": DEMO_SHIPYARD,
                                                                "jobs": JOBS})
    assert created.status_code == 403
    assert not Project.objects.filter(name="shop").exists()
    # the shipyard alone is theirs to change
    assert manager_api.put("/api/controlPlane/v1/project/sockshop", {"shipyard": DEMO_SHIPYARD}).status_code == 200


def test_a_user_with_the_jobs_permission_defines_jobs(manager_user, manager_api, sockshop):
    from django.contrib.auth.models import Permission

    manager_user.user_permissions.add(Permission.objects.get(codename="define_jobs"))
    assert manager_api.put("/api/controlPlane/v1/project/sockshop", {"jobs": JOBS}).status_code == 200
    assert Project.objects.get(name="sockshop").jobs == JOBS


# --- a job of `manage.py up`'s local executor reaches none of the server's secrets --------------

SNOOP = r"""
import json, os
found = {"uid": os.getuid(), "cwd": os.getcwd(), "env": sorted(os.environ)}
for name, path in [("admin-token", os.environ["DATA"] + "/admin-token"),
                   ("executor-token", os.environ["DATA"] + "/executor-token"),
                   ("database", os.environ["DATA"] + "/bosun.sqlite3"),
                   ("data-dir", os.environ["DATA"]),
                   ("executor-environ", "/proc/%d/environ" % os.getppid())]:
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").read()
        found[name] = "read"
    except OSError as exc:
        found[name] = type(exc).__name__
print("FOUND " + json.dumps(found), flush=True)
"""


@pytest.fixture
def up_with_secrets(tmp_path):
    port = free_port()
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")} | {
        "PYTHONUNBUFFERED": "1", "BOSUN_SECRET_KEY": "the-server-secret-key-" + "x" * 40,
        "BOSUN_ADMIN_PASSWORD": "the-admin-password"}
    with open(tmp_path / "up.log", "w") as out:
        server = subprocess.Popen([sys.executable, "manage.py", "up", "--port", str(port), "--no-demo",
                                   "--data-dir", str(data)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{port}/api/openapi.json")
        token = (data / "admin-token").read_text().strip()
        yield httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"x-token": token}, timeout=10), data
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching jobs to another OS user needs root")
def test_a_job_runs_as_nobody_outside_the_data_directory_and_reads_no_secret(up_with_secrets):
    http, data = up_with_secrets
    jobs = {"jobs": [{"task": "deployment", "command": [JOB_PYTHON, "-c", SNOOP], "env": {"DATA": str(data)}}]}
    assert http.post("/api/controlPlane/v1/project", json={
        "name": "snoop", "shipyard": one_stage_shipyard("snoop", [{"name": "deployment"}]),
        "jobs": json.dumps(jobs)}).status_code == 201
    http.post("/api/controlPlane/v1/project/snoop/service", json={"serviceName": "carts"}).raise_for_status()
    context = http.post("/api/v1/event", json={"type": "sh.keptn.event.dev.delivery.triggered", "source": "test",
                                               "data": {"project": "snoop", "stage": "dev", "service": "carts"}}
                        ).json()["keptnContext"]

    def finished():
        runs = http.get("/api/controlPlane/v1/sequence-execution",
                        params={"project": "snoop", "keptnContext": context}).json()["sequenceExecutions"]
        return runs and runs[0]["status"]["state"] == "finished" and runs[0]
    run = wait_until(finished)
    task = run["status"]["previousTasks"][0]["triggeredID"]
    log = http.get(f"/api/controlPlane/v1/task/{task}/log").text
    found = json.loads(log.split("FOUND ", 1)[1].splitlines()[0])

    assert found["uid"] == 65534  # nobody
    assert not found["cwd"].startswith(str(data))
    assert wait_until(lambda: not os.path.exists(found["cwd"]))  # its folder is removed once it has reported
    assert {"BOSUN_SECRET_KEY", "BOSUN_ADMIN_PASSWORD", "BOSUN_TOKEN", "BOSUN_TOKEN_FILE",
            "DATABASE_URL", "REDIS_URL"}.isdisjoint(found["env"])
    assert {name: found[name] for name in ("admin-token", "executor-token", "database", "data-dir",
                                           "executor-environ")} == {
        "admin-token": "PermissionError", "executor-token": "PermissionError", "database": "PermissionError",
        "data-dir": "PermissionError", "executor-environ": "PermissionError"}
    assert "the-server-secret-key" not in log and "the-admin-password" not in log
    modes = {path.name: oct(path.stat().st_mode & 0o777) for path in data.iterdir() if path.is_file()}
    assert oct(data.stat().st_mode & 0o777) == "0o700"
    assert set(modes.values()) == {"0o600"}, modes

