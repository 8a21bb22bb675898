"""Control latency against a running Bosun (with its engine), with real HTTP.

  python bench/control.py [--url http://127.0.0.1:8000] [--token $BOSUN_TOKEN] [-n 100] [--timeouts 30]

Prints the median and p99 of
  (a) abort (force) -> the queued sequence's first task is triggered,
  (b) resume        -> the task the pause held back is triggered,
  (c) how late timeouts fire past their deadline (server timestamps: endedAt - startDeadline).
(a) and (b) happen inside the control request, so they are the time until its answer arrives; each run
checks that the task is open by then.
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
          tasks: [{name: deploy}, {name: check}]
        - name: quick
          tasks: [{name: probe, startTimeout: 2s}]
""")




class Bench:
    def __init__(self, url, token):
        self.http = httpx.Client(base_url=url, headers={"x-token": token}, timeout=30)
        self.project = f"bench-{uuid.uuid4().hex[:8]}"

    def setup(self, services):
        self.http.post("/api/controlPlane/v1/project", json={"name": self.project, "shipyard": SHIPYARD}).raise_for_status()
        for name in services:
            self.http.post(f"/api/controlPlane/v1/project/{self.project}/service",
                           json={"serviceName": name}).raise_for_status()

    def teardown(self):
        self.http.delete(f"/api/controlPlane/v1/project/{self.project}")

    def trigger(self, sequence="delivery", service="svc"):
        r = self.http.post("/api/v1/event", json={"type": f"sh.keptn.event.dev.{sequence}.triggered", "source": "bench",
                                                  "data": {"project": self.project, "stage": "dev", "service": service}})
        r.raise_for_status()
        return r.json()["keptnContext"]

    def execution(self, context):
        r = self.http.get("/api/controlPlane/v1/sequence-execution", params={"project": self.project,
                                                                            "keptnContext": context})
        r.raise_for_status()
        return r.json()["sequenceExecutions"][0]

    def timed_control(self, context, **body):
        start = time.perf_counter()
        r = self.http.post(f"/api/controlPlane/v1/sequence/{self.project}/{context}/control", json=body)
        elapsed = time.perf_counter() - start
        r.raise_for_status()
        return elapsed

    def finish_current(self, context):
        task = self.execution(context)["status"]["currentTask"]
        self.http.post("/api/v1/event", json={
            "type": f"sh.keptn.event.{task['name']}.finished", "source": "bench", "shkeptncontext": context,
            "triggeredid": task["triggeredID"], "data": {"result": "pass", "status": "succeeded"}}).raise_for_status()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("BOSUN_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("BOSUN_TOKEN"))
    parser.add_argument("-n", type=int, default=100, help="abort and resume rounds (default 100)")
    parser.add_argument("--timeouts", type=int, default=30, help="timeouts to let fire (default 30)")
    args = parser.parse_args()
    if not args.token:
        sys.exit("Give an admin API token with --token or BOSUN_TOKEN (manage.py up prints one).")
    bench = Bench(args.url, args.token)
    services = ["svc"] + [f"t{i}" for i in range(args.timeouts)]
    bench.setup(services)
    aborts, resumes, lateness = [], [], []
    try:
        for i in range(args.n):
            holder, queued = bench.trigger(), bench.trigger()
            aborts.append(bench.timed_control(holder, state="abort", mode="force"))
            task = bench.execution(queued)["status"]["currentTask"]
            assert task and task["name"] == "deploy" and task["state"] == "triggered", task
            bench.timed_control(queued, state="pause")
            bench.finish_current(queued)
            resumes.append(bench.timed_control(queued, state="resume"))
            task = bench.execution(queued)["status"]["currentTask"]
            assert task and task["name"] == "check", task
            bench.timed_control(queued, state="abort", mode="force")
            if (i + 1) % max(1, args.n // 5) == 0:
                print(f"  {i + 1}/{args.n} abort and resume rounds", file=sys.stderr)
        print(f"  letting {args.timeouts} timeouts of 2s fire ...", file=sys.stderr)
        pending = {}
        for name in services[1:]:
            context = bench.trigger("quick", name)
            pending[context] = iso(bench.execution(context)["status"]["currentTask"]["timeouts"]["startDeadline"])
            time.sleep(0.05)
        give_up = time.monotonic() + 30
        while pending and time.monotonic() < give_up:
            time.sleep(0.5)
            for context in list(pending):
                found = bench.execution(context)
                if found["status"]["state"] == "timedOut":
                    lateness.append(iso(found["endedAt"]) - pending.pop(context))
        if pending:
            print(f"  {len(pending)} timeouts did not fire within 30 s: is the engine running?", file=sys.stderr)
    finally:
        bench.teardown()
    ms = lambda v: f"{v * 1000:7.2f} ms"  # noqa: E731
    print(f"Bosun control at {args.url}")
    print(f"(a) abort(force) -> queued first task triggered  n={len(aborts):4d}  median {ms(statistics.median(aborts))}"
          f"  p99 {ms(pct(aborts, 99))}")
    print(f"(b) resume -> held task triggered                n={len(resumes):4d}  median {ms(statistics.median(resumes))}"
          f"  p99 {ms(pct(resumes, 99))}")
    if lateness:
        print(f"(c) timeout fired past its deadline              n={len(lateness):4d}  median "
              f"{ms(statistics.median(lateness))}  p99 {ms(pct(lateness, 99))}")


if __name__ == "__main__":
    main()
