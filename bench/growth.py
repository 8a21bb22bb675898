"""How the single-client figures grow with the work stored: an empty database, 10,000 sequences waiting in one
lane, and 100,000 finished besides (SQLite), with the Bridge's sequence list."""

import http.client
import os
import subprocess
import time
from pathlib import Path

from figures import pct
from servers import PY, ROOT, Bosun, bosun_latencies, timed


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
