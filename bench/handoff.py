"""Hand-off latency against a running Bosun, with real HTTP.

  python bench/handoff.py [--url http://127.0.0.1:8000] [--token $BOSUN_TOKEN] [-n 200]

Creates a throw-away project, then measures and prints the median and p99 of
  (a) a task's .finished  -> the next task's .triggered is stored, and
  (b) a lane's release     -> the waiting sequence's first task is stored as .triggered.
Bosun hands over inside the request that carries the .finished, so each figure is the time from
sending that .finished until its answer arrives (by then the .triggered is committed); the event's
own `time` stamp is checked to be inside that window.
"""

import argparse
import os
import statistics
import sys
import time
import uuid

import httpx
from figures import iso, pct, shipyard

SHIPYARD = shipyard("""\
        - name: delivery
          tasks: [{name: t1}, {name: t2}, {name: t3}, {name: t4}]
""")



class Bench:
    def __init__(self, url, token):
        self.http = httpx.Client(base_url=url, headers={"x-token": token}, timeout=30)
        self.project = f"bench-{uuid.uuid4().hex[:8]}"

    def setup(self):
        r = self.http.post("/api/controlPlane/v1/project", json={"name": self.project, "shipyard": SHIPYARD})
        r.raise_for_status()
        self.http.post(f"/api/controlPlane/v1/project/{self.project}/service", json={"serviceName": "svc"}).raise_for_status()

    def teardown(self):
        self.http.delete(f"/api/controlPlane/v1/project/{self.project}")

    def trigger(self):
        r = self.http.post("/api/v1/event", json={
            "type": "sh.keptn.event.dev.delivery.triggered", "source": "bench",
            "data": {"project": self.project, "stage": "dev", "service": "svc"}})
        r.raise_for_status()
        return r.json()["keptnContext"]

    def open_task(self, name, context):
        r = self.http.get(f"/api/controlPlane/v1/event/triggered/sh.keptn.event.{name}.triggered",
                          params={"project": self.project, "service": "svc", "pageSize": 100})
        r.raise_for_status()
        for event in r.json()["events"]:
            if event["shkeptncontext"] == context:
                return event
        raise RuntimeError(f"no open {name} for {context}")

    def finish(self, event):
        """Send the task's .finished; return (seconds until the answer, answer time)."""
        body = {"type": event["type"].replace(".triggered", ".finished"), "source": "bench",
                "shkeptncontext": event["shkeptncontext"], "triggeredid": event["id"],
                "data": {"result": "pass", "status": "succeeded"}}
        start = time.perf_counter()
        r = self.http.post("/api/v1/event", json=body)
        elapsed = time.perf_counter() - start
        r.raise_for_status()
        return elapsed, time.time()



def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("BOSUN_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("BOSUN_TOKEN"))
    parser.add_argument("-n", type=int, default=100, help="sequences to drive (default 100)")
    args = parser.parse_args()
    if not args.token:
        sys.exit("Give an admin API token with --token or BOSUN_TOKEN (manage.py up prints one).")
    bench = Bench(args.url, args.token)
    bench.setup()
    handoff, release, late = [], [], 0
    try:
        for i in range(args.n):
            first = bench.trigger()
            second = bench.trigger()  # waits in the lane behind `first`
            for name, following in (("t1", "t2"), ("t2", "t3"), ("t3", "t4")):
                elapsed, answered = bench.finish(bench.open_task(name, first))
                handoff.append(elapsed)
                if iso(bench.open_task(following, first)["time"]) > answered + 0.002:
                    late += 1
            elapsed, answered = bench.finish(bench.open_task("t4", first))
            release.append(elapsed)
            if iso(bench.open_task("t1", second)["time"]) > answered + 0.002:
                late += 1
            for name in ("t1", "t2", "t3", "t4"):
                bench.finish(bench.open_task(name, second))
            if (i + 1) % max(1, args.n // 10) == 0:
                print(f"  {i + 1}/{args.n} pairs of sequences driven", file=sys.stderr)
    finally:
        bench.teardown()
    ms = lambda v: f"{v * 1000:7.2f} ms"  # noqa: E731
    print(f"Bosun hand-off at {args.url}, {args.n} pairs of sequences, 4 tasks each")
    print(f"(a) .finished -> next task .triggered  n={len(handoff):5d}  median {ms(statistics.median(handoff))}"
          f"  p99 {ms(pct(handoff, 99))}")
    print(f"(b) lane release -> waiting first task  n={len(release):5d}  median {ms(statistics.median(release))}"
          f"  p99 {ms(pct(release, 99))}")
    print(f"    .triggered stamped after the answer arrived: {late} (0 means every hand-off was in the request)")


if __name__ == "__main__":
    main()
