"""The servers `make bench` measures, and how it times one request: Bosun (`manage.py up`) with a project of
SERVICES services and its API as plain HTTP calls, and each intake path's single-client latency."""

import http.client
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

from figures import shipyard

ROOT = Path(__file__).resolve().parents[1]
FLOOR = ROOT.parent / "shared" / "floor"
PY = ROOT / ".venv" / "bin" / "python"
PG_URL = "postgresql://postgres@127.0.0.1:5432/{name}"
SERVICES = 200
SHIPYARD = shipyard("""\
        - name: delivery
          tasks: [{name: deployment}, {name: test}]
""")
PAD = "abcdefghij" * 60  # the floor's events carry 1 KB too


class Server:
    def __init__(self, args, env, cwd, port, log):
        self.port = port
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(args, env={**os.environ, **env}, cwd=cwd, stdout=open(log, "w"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/api/openapi.json" if "manage.py" in args[1] else "/noop")
                conn.getresponse().read()
                return
            except OSError:
                time.sleep(0.3)
        raise SystemExit(f"the server on port {port} did not come up; see {log}")

    def stop(self):
        try:
            os.killpg(self.process.pid, signal.SIGINT)
            self.process.wait(15)
        except Exception:
            os.killpg(self.process.pid, signal.SIGKILL)


class Bosun:
    """A Bosun server with a project of SERVICES services, and its API as plain HTTP calls."""

    def __init__(self, work: Path, port: int, database_url: str = ""):
        self.env = {"BOSUN_DATA_DIR": str(work), "BOSUN_ADMIN_PASSWORD": "Bench-123-x", "BOSUN_RUN_EXECUTOR": "false"}
        if database_url:
            self.env["DATABASE_URL"] = database_url
        self.server = Server([str(PY), "manage.py", "up", "--port", str(port), "--no-demo", "--no-executor"],
                             self.env, ROOT, port, work / "up.log")
        token = subprocess.run([str(PY), "manage.py", "create_token", "admin", "--name", "bench"], cwd=ROOT,
                               env={**os.environ, **self.env}, capture_output=True, text=True, check=True)
        self.headers = {"Content-Type": "application/json", "x-token": token.stdout.split()[-1]}
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.call("POST", "/api/controlPlane/v1/project", {"name": "bench", "shipyard": SHIPYARD})
        for i in range(SERVICES):
            self.call("POST", "/api/controlPlane/v1/project/bench/service", {"serviceName": f"s{i}"})
        self.n = 0

    def call(self, method, path, body=None, headers=None, conn=None):
        conn = conn or self.conn
        payload = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
        conn.request(method, path, payload, {**self.headers, **(headers or {})})
        response = conn.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data and data[:1] in (b"{", b"[") else data)

    def trigger_body(self, service=None):
        self.n += 1
        return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "bench",
                "type": "sh.keptn.event.dev.delivery.triggered",
                "data": {"project": "bench", "stage": "dev", "service": service or f"s{self.n % SERVICES}",
                         "message": PAD}}

    def trigger(self, service=None):
        status, body = self.call("POST", "/api/v1/event", self.trigger_body(service))
        assert status == 202, body
        return body["keptnContext"]

    def open_task(self, context):
        status, body = self.call("GET", f"/api/controlPlane/v1/sequence-execution?project=bench&keptnContext={context}")
        return body["sequenceExecutions"][0]["status"]["currentTask"]

    def task_event(self, context, task, kind, source="bench-executor"):
        return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": source, "shkeptncontext": context,
                "triggeredid": task["triggeredID"], "type": f"sh.keptn.event.{task['name']}.{kind}",
                "data": {"result": "pass", "status": "succeeded", "message": PAD}}

    def stop(self):
        self.server.stop()


def timed(fn, n, warm=10):
    """Run fn() n+warm times; return the latencies in ms of the last n (fn returns the time it measured)."""
    out = []
    for i in range(n + warm):
        took = fn()
        if i >= warm:
            out.append(took)
    return out


def clock(send):
    t0 = time.perf_counter()
    send()
    return (time.perf_counter() - t0) * 1000


def bosun_latencies(b: Bosun, n: int, warm: int = 10, interleaved: bool = False) -> dict[str, list[float]]:
    """Single-client latency of each intake path, each request timed alone. Like the floor's, the timed
    requests of a path run back to back: what each needs (its sequence, its open task) is set up first.
    `interleaved`: each timed request follows its own set-up instead (4-5 requests of other kinds)."""
    got = {}
    got["trigger"] = timed(lambda: clock(lambda: b.trigger()), n, warm)

    # each lane of the project is busy by now: each measurement below uses a lane of its own
    fresh = iter(range(10**6))
    tag = uuid.uuid4().hex[:6]

    def new_lane(kind):
        service = f"{kind}{tag}-{next(fresh)}"
        b.call("POST", "/api/controlPlane/v1/project/bench/service", {"serviceName": service})
        return service

    def back_to_back(setup):
        if interleaved:  # the way of runs before 2026-12-05 11:00: each timed request right after its set-up
            return timed(lambda: (lambda body: clock(lambda: b.call("POST", "/api/v1/event", body)))(setup()),
                         n, warm)
        pending = iter([setup() for _ in range(n + warm)])
        return timed(lambda: clock(lambda: b.call("POST", "/api/v1/event", next(pending))), n, warm)

    def started():
        context = b.trigger(new_lane("st"))
        return b.task_event(context, b.open_task(context), "started")
    got["started"] = back_to_back(started)

    def handoff_free_lane():
        context = b.trigger(new_lane("h"))
        return b.task_event(context, b.open_task(context), "finished")
    got["finished, hand-off"] = back_to_back(handoff_free_lane)

    def release():
        service = new_lane("r")
        context = b.trigger(service)
        b.trigger(service)  # waits behind it
        first = b.open_task(context)
        b.call("POST", "/api/v1/event", b.task_event(context, first, "finished"))
        return b.task_event(context, b.open_task(context), "finished")
    got["finished, lane release"] = back_to_back(release)

    control_context = b.trigger(new_lane("c"))  # a started sequence, in a lane of its own
    states = iter(["pause", "resume"] * (n + warm))

    def control():
        path = f"/api/controlPlane/v1/sequence/bench/{control_context}/control"
        return clock(lambda: b.call("POST", path, {"state": next(states)}))
    got["control (pause/resume)"] = timed(control, n, warm)
    return got
