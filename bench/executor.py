"""The job executor's latencies, with real processes: a Bosun server, one `bosun executor`, real jobs.

  python bench/executor.py [-n 30]

Starts `manage.py up --no-demo --no-executor` on a free port with a throw-away SQLite folder and one
`bosun executor` beside it (or uses --url/--token and an executor you started), then prints the
median and p99 of
  (a) task triggered   -> job process started  (the .triggered event's time -> the job's first clock read)
  (b) job exit         -> next task triggered   (the job's last clock read -> the next .triggered's time)
  (c) kill requested   -> process group gone    (the abort's request sent -> no process of the job left)
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from figures import iso, pct

ROOT = Path(__file__).resolve().parent.parent
SHIPYARD = """\
apiVersion: spec.keptn.sh/0.2.3
kind: Shipyard
metadata: {name: bench-executor}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: first}, {name: second}]
        - name: stuck
          tasks: [{name: hang}]
"""
CLOCK = "import time; print('clock', repr(time.time()), flush=True)"
HANG = ("import os, subprocess, sys, time; print('clock', repr(time.time()), 'pid', os.getpid(), flush=True); "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); time.sleep(600)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


class Bench:
    def __init__(self, url: str, token: str):
        self.http = httpx.Client(base_url=url, headers={"x-token": token}, timeout=30)
        self.project = f"bx{os.getpid()}"
        jobs = {"jobs": [{"task": "first", "command": [sys.executable, "-c", CLOCK]},
                         {"task": "second", "command": [sys.executable, "-c", CLOCK]},
                         {"task": "hang", "command": [sys.executable, "-c", HANG], "killGrace": "1s"}]}
        self.http.post("/api/controlPlane/v1/project", json={
            "name": self.project, "shipyard": SHIPYARD, "jobs": json.dumps(jobs)}).raise_for_status()
        self.services = 0

    def trigger(self, sequence: str) -> tuple[str, str]:
        self.services += 1
        service = f"s{self.services}"  # a lane of its own: nothing waits
        self.http.post(f"/api/controlPlane/v1/project/{self.project}/service", json={"serviceName": service})
        response = self.http.post("/api/v1/event", json={"type": f"sh.keptn.event.dev.{sequence}.triggered", "data": {
            "project": self.project, "stage": "dev", "service": service}})
        response.raise_for_status()
        return response.json()["keptnContext"], service

    def execution(self, context: str, name: str) -> dict:
        return self.http.get("/api/controlPlane/v1/sequence-execution", params={
            "project": self.project, "keptnContext": context, "name": name}).json()["sequenceExecutions"][0]

    def wait(self, check, seconds=30):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(0.01)
        raise SystemExit("timed out waiting; is an executor running for this server?")

    def log(self, triggered_id: str) -> str:
        return self.http.get(f"/api/controlPlane/v1/task/{triggered_id}/log").text

    def clock(self, triggered_id: str) -> tuple[float, list[str]]:
        line = next(l for l in self.log(triggered_id).splitlines() if l.startswith("clock "))
        parts = line.split()
        return float(parts[1]), parts

    def triggered_time(self, context: str, task: str) -> float:
        events = self.http.get("/api/v1/event", params={
            "keptnContext": context, "type": f"sh.keptn.event.{task}.triggered"}).json()["events"]
        return iso(events[0]["time"])

    def handoff(self) -> tuple[float, float]:
        context, _ = self.trigger("delivery")
        run = self.wait(lambda: (r := self.execution(context, "delivery"))["status"]["state"] == "finished" and r)
        first, second = run["status"]["previousTasks"]
        started = self.clock(first["triggeredID"])[0] - self.triggered_time(context, "first")
        # the job's last clock read is its exit, give or take the interpreter's shutdown
        exited = self.clock(first["triggeredID"])[0]
        handed = self.triggered_time(context, "second") - exited
        return started, handed

    def kill(self) -> float:
        context, _ = self.trigger("stuck")
        def running():
            task = self.execution(context, "stuck")["status"]["currentTask"]
            return task if task and "clock" in self.log(task["triggeredID"]) else None
        task = self.wait(running)
        pid = int(self.clock(task["triggeredID"])[1][3])
        sent = time.perf_counter()
        self.http.post(f"/api/controlPlane/v1/sequence/{self.project}/{context}/control",
                       json={"state": "abort", "mode": "kill"}).raise_for_status()
        while group_alive(pid):
            time.sleep(0.002)
        return time.perf_counter() - sent


def report(name: str, seconds: list[float]):
    ms = [s * 1000 for s in seconds]
    print(f"{name:<40} median {statistics.median(ms):7.1f} ms   p99 {pct(ms, 99):7.1f} ms   (n={len(ms)})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30)
    parser.add_argument("--url")
    parser.add_argument("--token", default=os.environ.get("BOSUN_TOKEN"))
    args = parser.parse_args()
    processes = []
    try:
        if args.url:
            url, token = args.url, args.token
        else:
            data = Path(tempfile.mkdtemp(prefix="bosun-bench-"))
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
            processes.append(subprocess.Popen(
                [sys.executable, "manage.py", "up", "--port", str(port), "--no-demo", "--no-executor",
                 "--data-dir", str(data)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            for _ in range(300):
                try:
                    httpx.get(f"{url}/api/openapi.json", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            token = (data / "admin-token").read_text().strip()
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "bosun", "executor", "--url", url, "--work-dir", str(data / "jobs"),
                 "--concurrency", "4"], cwd=ROOT, env={**env, "BOSUN_TOKEN": token},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1.0)
        bench = Bench(url, token)
        starts, handoffs, kills = [], [], []
        for _ in range(args.n):
            started, handed = bench.handoff()
            starts.append(started)
            handoffs.append(handed)
        for _ in range(max(5, args.n // 3)):
            kills.append(bench.kill())
        print(f"job executor against {url} (one executor; a job is a fresh Python process)")
        report("(a) task triggered -> job process started", starts)
        report("(b) job exit -> next task triggered", handoffs)
        report("(c) kill requested -> process group gone", kills)
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=20)


if __name__ == "__main__":
    sys.exit(main())
