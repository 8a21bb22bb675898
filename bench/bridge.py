"""The Bridge at size: 100,000 sequence executions, list and deep-link server times, push delays.

  python bench/bridge.py [--rows 100000] [--clients 1,100,500] [--rounds 5]

Seeds a fresh SQLite database (bulk inserts of ended sequences with one task each, plus live ones
created through the API), starts `manage.py up` on it, logs in, then prints the median and p95 time of
  the list page (first page, a filtered page, a deep page) and a deep link, and
  the median and p99 delay from a committed change (the API's answer) to the pushed fragment arriving
  at N websocket clients.
"""

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
from figures import pct

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench-password"



def seed(rows: int):
    """Bulk rows through the ORM: sequences that already ended, as a busy year would leave them."""
    import django

    django.setup()
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    from django.core.management import call_command
    from django.utils import timezone

    from sequences.configuration import create_project
    from sequences.demo import DEMO_SHIPYARD
    from sequences.models import SequenceExecution, TaskExecution

    call_command("migrate", verbosity=0)
    services = [f"svc-{i}" for i in range(50)]
    project = create_project("bench", DEMO_SHIPYARD, services=services)
    start = timezone.now() - timedelta(days=365)
    tasks = [{"name": n, "properties": None} for n in ("deployment", "test", "evaluation", "release")]
    batch = []
    for i in range(rows):
        moment = start + timedelta(seconds=i * 300)
        result = "fail" if i % 7 == 0 else "pass"
        batch.append(SequenceExecution(
            project=project, stage="dev", service=services[i % 50], name="delivery", context=str(uuid.uuid4()),
            triggered_id=str(uuid.uuid4()), state="finished", result=result, status="succeeded", root=True,
            input_data={"configurationChange": {"values": {"image": f"bench/{services[i % 50]}:{i}"}}},
            tasks=tasks, triggered_at=moment, started_at=moment, ended_at=moment + timedelta(seconds=90)))
        if len(batch) == 5000:
            _flush(batch, TaskExecution)
            batch = []
            print(f"  seeded {i + 1}/{rows}", file=sys.stderr)
    if batch:
        _flush(batch, TaskExecution)


def _flush(batch, TaskExecution):
    from sequences.models import SequenceExecution

    created = SequenceExecution.objects.bulk_create(batch)
    TaskExecution.objects.bulk_create([
        TaskExecution(sequence_execution=run, index=3, name="release", triggered_id=str(uuid.uuid4()),
                      state="finished", result=run.result, status="succeeded", triggered_at=run.started_at,
                      finished_at=run.ended_at) for run in created])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(session, path, n):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        r = session.get(path)
        times.append(time.perf_counter() - start)
        assert r.status_code == 200, (path, r.status_code)
    return times


async def push_delays(url, cookie, api, project, context, clients, rounds):
    import websockets

    ws_url = url.replace("http://", "ws://") + f"/ws/live/?project={project}"
    headers = {"Origin": url, "Cookie": cookie}
    sockets = []
    for _ in range(clients):
        sockets.append(await websockets.connect(ws_url, additional_headers=headers, max_size=None))
    delays = []
    try:
        for _ in range(rounds):
            for ws in sockets:  # drain anything left from the last round
                try:
                    while True:
                        await asyncio.wait_for(ws.recv(), 0.01)
                except asyncio.TimeoutError:
                    pass
            waiters = [asyncio.ensure_future(ws.recv()) for ws in sockets]
            await asyncio.sleep(0.05)
            loop = asyncio.get_running_loop()
            response = await loop.run_in_executor(None, lambda: api.post(
                f"/api/controlPlane/v1/sequence/{project}/{context}/control", json={"state": "pause"}))
            committed = time.perf_counter()
            assert response.status_code == 200, response.text
            arrived = []
            for waiter in waiters:
                await waiter
                arrived.append(time.perf_counter())
            delays.extend(max(0.0, a - committed) for a in arrived)
            await loop.run_in_executor(None, lambda: api.post(
                f"/api/controlPlane/v1/sequence/{project}/{context}/control", json={"state": "resume"}))
            await asyncio.sleep(0.3)
    finally:
        for ws in sockets:
            await ws.close()
    return delays


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--clients", default="1,100,500")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=30, help="requests per page kind (default 30)")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="bosun-bench-"))
    os.environ.update(DJANGO_SETTINGS_MODULE="bridge.settings", BOSUN_DATA_DIR=str(data))
    os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    seed(args.rows)
    print(f"  seeded {args.rows} sequence executions in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    port = free_port()
    env = {**os.environ, "BOSUN_ADMIN_PASSWORD": PASSWORD, "BOSUN_CSRF_TRUSTED_ORIGINS": f"http://127.0.0.1:{port}"}
    log = data / "up.log"
    server = subprocess.Popen([sys.executable, "manage.py", "up", "--port", str(port), "--no-demo", "--data-dir",
                               str(data)], cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(url + "/api/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        token = re.search(r"API token for admin: (bsn_\S+)", log.read_text()).group(1)
        api = httpx.Client(base_url=url, headers={"x-token": token}, timeout=30)
        live = api.post("/api/v1/event", json={"type": "sh.keptn.event.dev.delivery.triggered", "data": {
            "project": "bench", "stage": "dev", "service": "svc-1"}}).json()["keptnContext"]
        browser = httpx.Client(base_url=url, timeout=30, follow_redirects=True)
        browser.get("/accounts/login/")
        browser.post("/accounts/login/", data={"username": "admin", "password": PASSWORD,
                                                "csrfmiddlewaretoken": browser.cookies["csrftoken"]})
        deep_id = args.rows // 2
        pages = {
            "list, first page": "/bridge/project/bench/sequence/",
            "list, filtered (service + state)": "/bridge/project/bench/sequence/?service=svc-7&state=failed",
            f"list, deep page (before id {deep_id})": f"/bridge/project/bench/sequence/?before={deep_id}",
            "deep link": f"/bridge/project/bench/sequence/{live}",
        }
        print(f"Bosun Bridge with {args.rows} sequence executions (SQLite, one server process)")
        for name, path in pages.items():
            timed(browser, path, 2)  # warm up
            times = timed(browser, path, args.requests)
            print(f"  {name:40s} median {statistics.median(times) * 1000:7.1f} ms  p95 {pct(times, 95) * 1000:7.1f} ms")
        cookie = f"sessionid={browser.cookies['sessionid']}"
        for clients in [int(c) for c in args.clients.split(",")]:
            delays = asyncio.run(push_delays(url, cookie, api, "bench", live, clients, args.rounds))
            print(f"  push to {clients:3d} websocket clients              median {statistics.median(delays) * 1000:7.1f} ms"
                  f"  p99 {pct(delays, 99) * 1000:7.1f} ms  ({len(delays)} deliveries)")
    finally:
        server.terminate()
        server.wait(timeout=15)


if __name__ == "__main__":
    main()
