"""Freeze windows at size: the environment page of a project with 100 windows, and a trigger into it.

  .venv/bin/python bench/freezes.py [-n 200] [--windows 100]

Seeds a throw-away SQLite database with the demo shipyard (3 stages) and 10 services, `--windows` windows
(half recurring, in several time zones, half one-off; a few on now), a holder and a waiting sequence in each
of some lanes, then prints the median and p95 server time of the environment page (in process, through
Django's whole request stack, logged in), its query count, the time of a trigger into a frozen lane and
into a project without windows, side by side, and how late after a window's end the engine starts what waited.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["BOSUN_DATA_DIR"] = tempfile.mkdtemp(prefix="bosun-freezes-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bridge.settings")
os.environ.setdefault("BOSUN_LIVE", "0")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from sequences import freeze_config  # noqa: E402
from sequences.configuration import create_project  # noqa: E402
from sequences.demo import DEMO_SHIPYARD  # noqa: E402
from sequences.transitions import arrivals  # noqa: E402

ZONES = ["UTC", "Europe/Vienna", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]
SERVICES = [f"svc-{i}" for i in range(10)]


def seed(windows: int):
    call_command("migrate", verbosity=0)
    frozen = create_project("frozen", DEMO_SHIPYARD, services=SERVICES)
    create_project("open", DEMO_SHIPYARD, services=SERVICES)
    now = timezone.now()
    for i in range(windows):
        body = {"name": f"window-{i:03d}", "reason": f"freeze number {i}", "timeZone": ZONES[i % len(ZONES)],
                "stages": [["production"], ["staging"], []][i % 3],
                "services": [SERVICES[i % len(SERVICES)]] if i % 4 else []}
        if i % 2:
            body.update(cron=f"{i % 60} {i % 24} * * {i % 7}", duration=f"{1 + i % 30}h")
        else:
            on = i % 10 == 0
            start = now - timedelta(hours=1) if on else now + timedelta(days=1 + i)
            body.update(start=start.isoformat(), end=(start + timedelta(hours=3 + i)).isoformat())
        freeze_config.create_window(frozen, body, actor="bench", source="api")
    for service in SERVICES[:5]:  # holders in dev, and one waiting behind each
        for _ in range(2):
            trigger("frozen", service, "dev")
    user = get_user_model().objects.create_superuser("bench", "", "bench")
    return user


def trigger(project: str, service: str, stage: str):
    receipt = arrivals.receive_event({
        "specversion": "1.0", "source": "bench", "type": f"sh.keptn.event.{stage}.delivery.triggered",
        "data": {"project": project, "stage": stage, "service": service,
                 "configurationChange": {"values": {"image": "docker.io/keptnexamples/carts:0.13.1"}}}})
    assert receipt.code == 202, receipt


def timed(n: int, work) -> list[float]:
    found = []
    for _ in range(n):
        start = time.perf_counter()
        work()
        found.append((time.perf_counter() - start) * 1000)
    return found


def p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--windows", type=int, default=100)
    args = parser.parse_args()
    user = seed(args.windows)
    client = Client()
    client.force_login(user)
    page = client.get("/bridge/project/frozen/")
    assert page.status_code == 200 and page.content.count(b'class="freeze') >= 1, page.status_code
    connection.force_debug_cursor = True
    with CaptureQueriesContext(connection) as queries:
        client.get("/bridge/project/frozen/")
    env = timed(args.n, lambda: client.get("/bridge/project/frozen/"))
    plain = timed(args.n, lambda: client.get("/bridge/project/open/"))
    print(f"environment page, {args.windows} windows: median {statistics.median(env):.1f} ms, "
          f"p95 {p95(env):.1f} ms, {len(queries)} queries")
    print(f"environment page, no windows:   median {statistics.median(plain):.1f} ms, p95 {p95(plain):.1f} ms")
    connection.force_debug_cursor = False
    into_frozen = timed(args.n, lambda: trigger("frozen", SERVICES[1], "production"))
    into_open = timed(args.n, lambda: trigger("open", SERVICES[1], "production"))
    print(f"trigger into a lane frozen by one of {args.windows} windows: median "
          f"{statistics.median(into_frozen):.2f} ms; into a project without windows: "
          f"{statistics.median(into_open):.2f} ms")
    late = lateness()
    print(f"a window's end to its waiting sequence's start (engine on a thread, {len(late)} rounds): "
          f"{', '.join(f'{ms:.0f}' for ms in late)} ms")


def lateness(rounds: int = 5) -> list[float]:
    """How late after a window's end its waiting sequence starts, with the engine on a thread as `up` runs it
    (woken by commits, asleep until the next timer): ms per round."""
    from sequences.engine import start_in_thread
    from sequences.models import Project, SequenceExecution

    engine = start_in_thread()
    found = []
    try:
        for i in range(rounds):
            service = SERVICES[5 + i % 5]
            end = timezone.now() + timedelta(seconds=1.5)
            freeze_config.create_window(Project.objects.get(name="open"), {
                "name": f"late-{i}", "stages": ["dev"], "services": [service],
                "start": (timezone.now() - timedelta(seconds=1)).isoformat(), "end": end.isoformat()},
                actor="bench", source="api")
            trigger("open", service, "dev")
            run = SequenceExecution.objects.filter(project__name="open", stage="dev", service=service).latest("id")
            assert run.state == SequenceExecution.WAITING
            deadline = time.monotonic() + 15
            while run.started_at is None and time.monotonic() < deadline:
                time.sleep(0.01)
                run.refresh_from_db()
            found.append((run.started_at - end).total_seconds() * 1000)
    finally:
        engine.stop()
    return found


if __name__ == "__main__":
    main()
