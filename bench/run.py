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
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

from figures import pct
from growth import growth
from servers import FLOOR, PAD, PG_URL, PY, ROOT, Bosun, Server, bosun_latencies, timed

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
