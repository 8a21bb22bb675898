"""Where the time of each intake path goes: cProfile of the server-side work, in process, on SQLite.

  .venv/bin/python bench/hotpaths.py [-n 300] [--top 12] [--path trigger|started|handoff|release|control] [--sql] [--pg]

For a trigger, a task's `.started`, a `.finished` that hands off to the next task, a `.finished` that
releases a lane to a waiting sequence, and a control command (pause, then resume), it runs the same
function a server runs per request (bridge/intake.py's `_answer`), prints the mean time and queries per call without the profiler, then the functions that cost the
most with it. Uses a throw-away data folder, and with --pg a throw-away PostgreSQL database on
127.0.0.1:5432 (Django's psycopg pool, as `manage.py up` runs with DATABASE_URL).
"""

import argparse
import cProfile
import json
import logging
import os
import pstats
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["BOSUN_DATA_DIR"] = tempfile.mkdtemp(prefix="bosun-profile-")
PG_DATABASE = f"bosun_hotpaths_{os.getpid()}"
if "--pg" in sys.argv:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {PG_DATABASE}")
    os.environ["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{PG_DATABASE}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bridge.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from figures import shipyard  # noqa: E402

SHIPYARD = shipyard("""\
        - name: delivery
          tasks: [{name: deployment}, {name: test}]
""")
PAD = "abcdefghij" * 60


def setup(services: int):
    from django.contrib.auth import get_user_model

    from sequences.configuration import create_project
    from sequences.models import ApiToken

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_superuser("admin", "", "pw-admin")
    create_project("bench", SHIPYARD, services=[f"s{i}" for i in range(services)])
    return ApiToken.issue(user, "bench")[1]


def post(token, body, path="/api/v1/event"):
    from bridge.intake import _answer, _route

    work, _, match = _route({"type": "http", "method": "POST", "path": path, "headers": [(b"host", b"127.0.0.1")]})
    status, answer = _answer(path, work, match, "127.0.0.1", token, {}, "application/json", json.dumps(body).encode())
    assert status < 300, (status, answer)
    return answer


def trigger_event(service):
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "bench",
            "type": "sh.keptn.event.dev.delivery.triggered",
            "data": {"project": "bench", "stage": "dev", "service": service, "message": PAD}}


def task_event(task, kind):
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "bench-executor",
            "type": f"sh.keptn.event.{task.name}.{kind}", "shkeptncontext": task.sequence_execution.context,
            "triggeredid": task.triggered_id, "data": {"result": "pass", "status": "succeeded", "message": PAD}}


def open_task(context, name):
    from sequences.models import TaskExecution

    return TaskExecution.objects.select_related("sequence_execution").get(
        sequence_execution__context=context, name=name)


def prepare(path, token, n):
    """The n calls of one path, each a function of no arguments, set up so that each does what it says."""
    if path == "trigger":
        return [lambda i=i: post(token, trigger_event(f"t{i % 50}")) for i in range(n)]
    from sequences.configuration import create_service
    from sequences.models import Project

    project, calls = Project.objects.get(name="bench"), []
    for i in range(n):
        service = f"{path}{len(project.services.all())}"
        create_service(project, service)
        context = post(token, trigger_event(service))["keptnContext"]
        if path == "started":
            calls.append(lambda t=open_task(context, "deployment"): post(token, task_event(t, "started")))
        elif path == "handoff":
            calls.append(lambda t=open_task(context, "deployment"): post(token, task_event(t, "finished")))
        elif path == "release":
            post(token, task_event(open_task(context, "deployment"), "finished"))
            post(token, trigger_event(service))  # waits in the lane
            calls.append(lambda t=open_task(context, "test"): post(token, task_event(t, "finished")))
        elif path == "control":
            url = f"/api/controlPlane/v1/sequence/bench/{context}/control"

            def control(url=url):
                for state in ("pause", "resume"):
                    post(token, {"state": state}, url)
            calls.append(control)
    return calls


def print_statements(path, calls, n):
    """The statements of one call, each with its mean time over `n` calls (the database's answer included),
    and the commit's: where a database-bound path spends its time."""
    timed, commits = [], []

    def timing(execute, sql, *rest):
        started = time.perf_counter()
        try:
            return execute(sql, *rest)
        finally:
            timed.append((sql, time.perf_counter() - started))

    commit = connection._commit

    def timed_commit():
        started = time.perf_counter()
        try:
            return commit()
        finally:
            commits.append(time.perf_counter() - started)

    connection._commit = timed_commit
    try:
        with connection.execute_wrapper(timing):
            started = time.perf_counter()
            for call in calls:
                call()
            took = time.perf_counter() - started
    finally:
        del connection._commit
    per_call = len(timed) // n
    print(f"\n## {path}: the statements of one call, mean ms over {n} calls")
    for i in range(per_call):
        mean = sum(d for _, d in timed[i::per_call]) / n * 1000
        print(f"{mean:6.3f}  {timed[i][0][:150]}")
    in_db = (sum(d for _, d in timed) + sum(commits)) / n * 1000
    print(f"{sum(commits) / n * 1000:6.3f}  COMMIT ({len(commits) / n:.1f} per call)")
    print(f"{in_db:6.3f}  in all, of {took / n * 1000:.3f} ms per call")


def main():
    if not os.environ.get("HOTPATHS_LOG"):
        logging.disable(logging.INFO)  # the transitions' log lines would drown the figures
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--path", action="append", choices=["trigger", "started", "handoff", "release", "control"])
    parser.add_argument("--sql", action="store_true", help="print the statements of the last call of each path")
    parser.add_argument("--pg", action="store_true", help="on PostgreSQL instead of SQLite")
    args = parser.parse_args()
    token = setup(0)
    from sequences.configuration import create_service
    from sequences.models import Project

    for i in range(50):
        create_service(Project.objects.get(name="bench"), f"t{i}")
    for path in args.path or ["trigger", "started", "handoff", "release", "control"]:
        per = 2 if path == "control" else 1
        plain, profiled = prepare(path, token, args.n), prepare(path, token, args.n)
        queries = []
        with connection.execute_wrapper(lambda execute, sql, *rest: queries.append(sql) or execute(sql, *rest)):
            started = time.perf_counter()
            for call in plain:
                call()
            took = time.perf_counter() - started
        if args.sql:
            print_statements(path, prepare(path, token, args.n), args.n)
        profile = cProfile.Profile()
        profile.enable()
        for call in profiled:
            call()
        profile.disable()
        print(f"\n## {path}: {took / args.n / per * 1000:.2f} ms and {len(queries) / args.n / per:.1f} queries "
              f"per request (mean of {args.n * per}, without the profiler)")
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(r"/(sequences|bridge)/", args.top)
        if os.environ.get("HOTPATHS_CALLEES"):
            stats.print_callees(os.environ["HOTPATHS_CALLEES"])


if __name__ == "__main__":
    try:
        main()
    finally:
        if "--pg" in sys.argv:
            connection.close()
            with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
