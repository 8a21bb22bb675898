"""`make bench`: Bosun beside the floor (../shared/floor), in one run, on SQLite and on PostgreSQL.

Starts every server it needs (Bosun's `manage.py up` without demo or executor; the floor's daphne), then
prints one Markdown table per database: single-client p50/p99 of a trigger, a task's `.started`, a
`.finished` that hands off to the next task, a `.finished` that releases a lane to a waiting sequence, and
a control command (pause/resume), each beside the floor's one-transaction event and as a ratio; events/s
with 1 and 8 clients (on PostgreSQL also 8 clients over two web processes), and a CloudEvents batch of
1,000 `.started` events. Then the growth table: the same
single-client figures with 10,000 sequences waiting in one lane and with 100,000 finished sequences
besides (three servers side by side, in alternating rounds), and the Bridge's sequence list with a filter
that matches nothing.

  python bench/run.py [--rounds 3] [--quick] [--out bench/RESULTS.md] [--no-pg] [--no-growth] [--interleaved]

Figures drift on shared machines: read the ratios, which are measured side by side in the same run.
"""

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

from figures import pct, shipyard

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


def floor_latency(port: int, n: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    i = iter(range(10**9))

    def one():
        body = json.dumps({"specversion": "1.0", "id": str(uuid.uuid4()), "source": "bench",
                           "type": "com.example.task.progress", "time": "2025-01-01T00:00:00Z",
                           "contextid": "00000000-0000-4000-8000-%012x" % (next(i) % 1000),
                           "data": {"state": "RUNNING", "progress": 42, "message": PAD}})
        t0 = time.perf_counter()
        conn.request("POST", "/events-async", body, {"Content-Type": "application/json"})
        conn.getresponse().read()
        return (time.perf_counter() - t0) * 1000
    return timed(one, n)


def throughput(port, make, clients, seconds) -> float:
    """Requests/s of `clients` clients for `seconds`; `port` may be a list, the clients spread over them."""
    ports = port if isinstance(port, list) else [port]
    stop = time.time() + seconds
    counts = [0] * clients

    def worker(k):
        conn = http.client.HTTPConnection("127.0.0.1", ports[k % len(ports)], timeout=60)
        while time.time() < stop:
            path, body, headers = make()
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            response.read()
            counts[k] += 1
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return sum(counts) / seconds


def bosun_make(b: Bosun):
    return lambda: ("/api/v1/event", json.dumps(b.trigger_body()), b.headers)


def floor_make():
    i = iter(range(10**9))
    return lambda: ("/events-async", json.dumps({
        "specversion": "1.0", "id": str(uuid.uuid4()), "source": "bench", "type": "com.example.task.progress",
        "time": "2025-01-01T00:00:00Z", "contextid": "00000000-0000-4000-8000-%012x" % (next(i) % 1000),
        "data": {"state": "RUNNING", "progress": 42, "message": PAD}}), {"Content-Type": "application/json"})


def batch_rate(b: Bosun, size: int = 1000) -> float:
    """Events/s of one CloudEvents batch of `size` task `.started` events, each for its own open task."""
    contexts = []
    for _ in range(size):
        service = f"b{uuid.uuid4().hex[:10]}"
        b.call("POST", "/api/controlPlane/v1/project/bench/service", {"serviceName": service})
        contexts.append(b.trigger(service))
    events = [b.task_event(context, b.open_task(context), "started") for context in contexts]
    t0 = time.perf_counter()
    status, answers = b.call("POST", "/api/v1/event", json.dumps(events),
                             {"Content-Type": "application/cloudevents-batch+json"})
    took = time.perf_counter() - t0
    assert 200 <= status < 300 and len(answers) == size and all(a["status"] == 202 for a in answers), answers[:3]
    return size / took


def row(name, bosun, floor, raw=None):
    b50, b99, f50, f99 = pct(bosun, 50), pct(bosun, 99), pct(floor, 50), pct(floor, 99)
    line = f"| {name} | {b50:.1f} / {b99:.1f} | {f50:.1f} / {f99:.1f} | {b50 / f50:.2f}× |"
    if raw:
        r50 = pct(raw, 50)
        line += f" {r50:.1f} | {b50 / r50:.2f}× |"
    return line


def measure(label: str, work: Path, database_url: str, floor_env: dict, rounds: int, n: int, seconds: float,
            port: int, interleaved: bool = False) -> list[str]:
    bosun = Bosun(work / "bosun", port, database_url)
    fdir = work / "floor"
    shutil.copytree(FLOOR, fdir, ignore=shutil.ignore_patterns("*.sqlite3", "__pycache__"))
    fenv = {"FLOOR_SQLITE_PATH": str(work / "floor.sqlite3"), "DJANGO_SETTINGS_MODULE": "floorproj.settings",
            "PYTHONPATH": str(fdir), **floor_env}
    subprocess.run([str(PY), "manage.py", "migrate", "-v0"], env={**os.environ, **fenv}, cwd=fdir, check=True)
    subprocess.run([str(PY), "manage.py", "resetdb"], env={**os.environ, **fenv}, cwd=fdir, capture_output=True)
    floor = Server([str(ROOT / ".venv" / "bin" / "daphne"), "-b", "127.0.0.1", "-p", str(port + 1), "-v", "0",
                    "floorproj.asgi:application"], fenv, fdir, port + 1, work / "floor.log")
    # On SQLite, the raw floor too: a bare ASGI app with sqlite3 and no framework (the least Python can do)
    raw = None if database_url else Server(
        [str(ROOT / ".venv" / "bin" / "daphne"), "-b", "127.0.0.1", "-p", str(port + 3), "-v", "0",
         "rawfloor:application"], {"RAWFLOOR_SQLITE_PATH": str(work / "raw.sqlite3"), "PYTHONPATH": str(fdir)},
        fdir, port + 3, work / "raw.log")
    # On PostgreSQL, a second web process beside the first (`up --no-engine`, as the scale-out topology runs them)
    second = Server([str(PY), "manage.py", "up", "--port", str(port + 10), "--no-demo", "--no-executor",
                     "--no-engine"], bosun.env, ROOT, port + 10, work / "bosun" / "up-2.log") if database_url else None
    try:
        lat: dict[str, list[float]] = {}
        floor_lat: list[float] = []
        raw_lat: list[float] = []
        rates = {"b1": [], "b8": [], "f1": [], "f8": [], "r1": [], "r8": [], "two": []}
        for _ in range(rounds):
            for key, values in bosun_latencies(bosun, n, interleaved=interleaved).items():
                lat.setdefault(key, []).extend(values)
            floor_lat.extend(floor_latency(port + 1, n))
            if raw:
                raw_lat.extend(floor_latency(port + 3, n))
            rates["b1"].append(throughput(port, bosun_make(bosun), 1, seconds))
            rates["f1"].append(throughput(port + 1, floor_make(), 1, seconds))
            rates["b8"].append(throughput(port, bosun_make(bosun), 8, seconds))
            rates["f8"].append(throughput(port + 1, floor_make(), 8, seconds))
            if second:
                rates["two"].append(throughput([port, port + 10], bosun_make(bosun), 8, seconds))
            if raw:
                rates["r1"].append(throughput(port + 3, floor_make(), 1, seconds))
                rates["r8"].append(throughput(port + 3, floor_make(), 8, seconds))
        batch = batch_rate(bosun)
        med = {k: statistics.median(v) for k, v in rates.items() if v}
        if raw:
            lines = [f"### {label}", "", "| single client, ms | Bosun p50 / p99 | floor p50 / p99 | p50 ratio | "
                     "raw floor p50 | Bosun/raw |", "| --- | --- | --- | --- | --- | --- |"]
            lines += [row(name, values, floor_lat, raw_lat) for name, values in lat.items()]
            lines += ["", "| events/s | Bosun | floor | Bosun/floor | raw floor | Bosun/raw |",
                      "| --- | --- | --- | --- | --- | --- |",
                      f"| 1 client, triggers | {med['b1']:.0f} | {med['f1']:.0f} | {med['b1'] / med['f1']:.2f} | "
                      f"{med['r1']:.0f} | {med['b1'] / med['r1']:.2f} |",
                      f"| 8 clients, triggers | {med['b8']:.0f} | {med['f8']:.0f} | {med['b8'] / med['f8']:.2f} | "
                      f"{med['r8']:.0f} | {med['b8'] / med['r8']:.2f} |",
                      f"| one batch of 1,000 `.started` | {batch:.0f} | — | — | — | — |", ""]
            return lines
        lines = [f"### {label}", "", "| single client, ms | Bosun p50 / p99 | floor p50 / p99 | p50 ratio |",
                 "| --- | --- | --- | --- |"]
        lines += [row(name, values, floor_lat) for name, values in lat.items()]
        lines += ["", "| events/s | Bosun | floor | Bosun/floor |", "| --- | --- | --- | --- |",
                  f"| 1 client, triggers | {med['b1']:.0f} | {med['f1']:.0f} | {med['b1'] / med['f1']:.2f} |",
                  f"| 8 clients, triggers | {med['b8']:.0f} | {med['f8']:.0f} | {med['b8'] / med['f8']:.2f} |",
                  f"| 8 clients, triggers, over two web processes | {med['two']:.0f} | — | "
                  f"{med['two'] / med['b8']:.2f} of one process |",
                  f"| one batch of 1,000 `.started` | {batch:.0f} | — | — |", ""]
        return lines
    finally:
        bosun.stop()
        if second:
            second.stop()
        floor.stop()
        if raw:
            raw.stop()


def growth(work: Path, n: int, port: int, rounds: int) -> list[str]:
    """The single-client figures on an empty database, with 10,000 waiting in one lane, and with 100,000
    finished besides. Three servers side by side, measured in alternating rounds, so that the machine's
    drift falls on all three alike."""
    servers = [Bosun(work / "empty", port), Bosun(work / "waiting", port + 2), Bosun(work / "finished", port + 4)]
    try:
        populate(servers[1], waiting=10_000, finished=0)
        populate(servers[2], waiting=10_000, finished=100_000)
        figures: list[dict[str, list[float]]] = [{} for _ in servers]
        for _ in range(rounds):
            for bosun, got in zip(servers, figures):
                for name, values in (bosun_latencies(bosun, n) | {
                        "list, filter matching nothing": list_latency(bosun, n)}).items():
                    got.setdefault(name, []).extend(values)
        lines = ["### Cost as work grows (SQLite)", "",
                 "| single client p50, ms | empty | 10,000 waiting in one lane | + 100,000 finished | growth |",
                 "| --- | --- | --- | --- | --- |"]
        for name in figures[0]:
            cells = [f"{pct(f[name], 50):.1f}" for f in figures]
            growth_pct = 100 * (max(pct(f[name], 50) for f in figures[1:]) / pct(figures[0][name], 50) - 1)
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {growth_pct:+.0f}% at worst |")
        list_p95 = pct(figures[-1]["list, filter matching nothing"], 95)
        lines += ["", f"Sequence list with a filter that matches nothing, at 110,000 sequences: p95 {list_p95:.1f} ms.",
                  ""]
        return lines
    finally:
        for bosun in servers:
            bosun.stop()


def populate(bosun: Bosun, waiting: int, finished: int):
    """Rows written straight into the database by a Django script (the API would take minutes)."""
    script = f"""
import uuid
from django.utils import timezone
from sequences.models import Project, SequenceExecution as SE
from sequences.transitions.task_moves import snapshot
p = Project.objects.get(name="bench")
tasks = [snapshot(t) for t in p.parsed_shipyard().sequence("dev", "delivery").tasks]  # as a trigger stores them
now = timezone.now()
rows = []
for i in range({waiting}):
    rows.append(SE(project=p, stage="dev", service="s0", name="delivery", context=str(uuid.uuid4()),
                   triggered_id=str(uuid.uuid4()), state=SE.WAITING, root=True, input_data={{}}, tasks=tasks))
for i in range({finished}):
    rows.append(SE(project=p, stage="dev", service=f"s{{i % 200}}" if i % 201 else "quiet", name="delivery",
                   context=str(uuid.uuid4()),
                   triggered_id=str(uuid.uuid4()), state=SE.FINISHED, result="pass", status="succeeded",
                   root=True, input_data={{}}, tasks=tasks, started_at=now, ended_at=now))
SE.objects.bulk_create(rows, batch_size=2000)
"""
    subprocess.run([str(PY), "manage.py", "shell", "-c", script], cwd=ROOT, env={**os.environ, **bosun.env}, check=True)


def list_latency(bosun: Bosun, n: int) -> list[float]:
    """The Bridge's sequence list with a filter that matches nothing, as a logged-in person opens it."""
    conn = http.client.HTTPConnection("127.0.0.1", bosun.port, timeout=60)
    conn.request("GET", "/accounts/login/")
    response = conn.getresponse()
    response.read()
    cookies = dict(c.split(";")[0].split("=", 1) for c in response.headers.get_all("Set-Cookie") or [])
    token = cookies["csrftoken"]
    body = f"csrfmiddlewaretoken={token}&username=admin&password=Bench-123-x"
    conn.request("POST", "/accounts/login/", body, {"Content-Type": "application/x-www-form-urlencoded",
                                                   "Cookie": f"csrftoken={token}", "Referer": f"http://127.0.0.1:{bosun.port}/"})
    response = conn.getresponse()
    response.read()
    for c in response.headers.get_all("Set-Cookie") or []:
        key, value = c.split(";")[0].split("=", 1)
        cookies[key] = value
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())

    def one():
        t0 = time.perf_counter()
        # waiting sequences exist (in other lanes), none for the service 'quiet': the filter matches nothing
        conn.request("GET", "/bridge/project/bench/sequence/?service=quiet&state=waiting", headers={"Cookie": cookie})
        r = conn.getresponse()
        r.read()
        assert r.status == 200, r.status
        return (time.perf_counter() - t0) * 1000
    return timed(one, n)


def pg_reachable() -> bool:
    try:
        import psycopg  # noqa: F401 (from the project's venv when run by make bench)

        psycopg.connect(PG_URL.format(name="postgres"), connect_timeout=3).close()
        return True
    except Exception:
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer requests per figure (a smoke run)")
    parser.add_argument("--out", default="")
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--no-growth", action="store_true")
    parser.add_argument("--interleaved", action="store_true",
                        help="time each request right after its own set-up, as runs before 2026-12-05 11:00 did")
    args = parser.parse_args()
    if not FLOOR.exists():
        raise SystemExit(f"The floor is not at {FLOOR}: put ../shared beside the checkout.")
    n, seconds = (30, 2.0) if args.quick else (200, 6.0)
    work = Path(tempfile.mkdtemp(prefix="bosun-bench-"))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = ["# Bosun beside the floor", "",
             f"One `make bench` run, {started}, on {platform.node()} ({os.cpu_count()} cores, "
             f"{platform.platform()}, Python {platform.python_version()}). Each figure is the median over "
             f"{args.rounds} alternating rounds; the floor is ../shared/floor (daphne, one transaction per event).",
             ""]
    try:
        lines += measure("SQLite (embedded mode)", work / "sqlite", "", {}, args.rounds, n, seconds, 8491,
                         args.interleaved)
        print("\n".join(lines), flush=True)
        if not args.no_pg and pg_reachable():
            import psycopg

            with psycopg.connect(PG_URL.format(name="postgres"), autocommit=True) as conn:
                if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'floor'").fetchone():
                    conn.execute("CREATE ROLE floor LOGIN")
                for name, owner in (("bosun_bench", "postgres"), ("floor", "floor")):
                    conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                    conn.execute(f"CREATE DATABASE {name} OWNER {owner}")
            pg = measure("PostgreSQL (Django's psycopg pool)", work / "pg", PG_URL.format(name="bosun_bench"),
                         {"FLOOR_DB": "pg", "FLOOR_PG_POOL": "1", "FLOOR_PG_PORT": "5432"},
                         args.rounds, n, seconds, 8493, args.interleaved)
            print("\n".join(pg), flush=True)
            lines += pg
        elif not args.no_pg:
            lines += ["### PostgreSQL", "", "Not measured: no PostgreSQL answered on 127.0.0.1:5432.", ""]
        if not args.no_growth:
            grown = growth(work / "grow", max(20, n // 2), 8495, args.rounds)
            print("\n".join(grown), flush=True)
            lines += grown
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
