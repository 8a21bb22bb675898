"""The demo project `make run` shows: sockshop, delivered through dev, staging and production."""

import json

from sequences.configuration import create_project, update_jobs
from sequences.models import Project

DEMO_SHIPYARD = """\
apiVersion: spec.keptn.sh/0.2.3
kind: Shipyard
metadata:
  name: shipyard-sockshop
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          queue: newest  # Bosun: when dev frees up, only the newest waiting delivery runs
          tasks:
            - name: deployment
              properties:
                deploymentstrategy: direct
            - name: test
              properties:
                teststrategy: functional
            - name: evaluation
            - name: release
    - name: staging
      sequences:
        - name: delivery
          triggeredOn:
            - event: dev.delivery.finished
          tasks:
            - name: deployment
              properties:
                deploymentstrategy: blue_green_service
            - name: test
              properties:
                teststrategy: performance
            - name: evaluation
            - name: release
    - name: production
      sequences:
        - name: delivery
          triggeredOn:
            - event: staging.delivery.finished
          tasks:
            - name: deployment
              properties:
                deploymentstrategy: blue_green_service
            - name: test
              properties:
                teststrategy: performance
            - name: evaluation
            - name: release
        - name: rollback
          triggeredOn:
            - event: production.delivery.finished
              selector:
                match:
                  result: fail
          tasks:
            - name: rollback
"""


# One small script for every demo job (stdlib only, so any host's python3 runs it); argv[1] says which.
DEMO_SCRIPT = r"""
import json, os, sys, time
kind = sys.argv[1]
event = json.load(open(os.environ["BOSUN_EVENT_FILE"]))
data = event.get("data") or {}
stage, service = data.get("stage", "?"), data.get("service", "?")
image = ((data.get("configurationChange") or {}).get("values") or {}).get("image", "(no image)")
labels = data.get("labels") or {}
out = os.environ["BOSUN_OUTPUT_DIR"]

def step(text, pause=0.6):
    time.sleep(pause)
    print(text, flush=True)

def save(name, content):
    with open(os.path.join(out, name), "w") as f:
        f.write(content)

def result(message, **extra):
    save("result.json", json.dumps({"message": message, "data": extra}))

if kind == "deploy":
    strategy = (data.get("deployment") or {}).get("deploymentstrategy", "direct")
    print(f"Deploying {service} {image} to {stage} ({strategy})", flush=True)
    for text in ("pulling the image", "starting 2 new pods", "waiting for readiness: 2/2 ready", "switching traffic"):
        step("  " + text)
    url = f"http://{service}.{stage}.sockshop.local"
    save("deployment.json", json.dumps({"service": service, "stage": stage, "image": image, "url": url}, indent=2))
    result(f"Deployed {image} to {stage}", deployment={"deploymentURIsPublic": [url]})
elif kind == "test":
    strategy = (data.get("test") or {}).get("teststrategy", "functional")
    # label fail=true fails the tests in production (which rolls back); fail=<stage> fails them there
    failing = labels.get("fail") == stage or (labels.get("fail") == "true" and stage == "production")
    print(f"Testing {service} in {stage} ({strategy} tests)", flush=True)
    report = []
    for i, case in enumerate(("catalogue answers", "cart: add and remove", "checkout", "50 requests/s for 5s")):
        ok = not (failing and i == 2)
        step(f"  {'PASS' if ok else 'FAIL'}  {case}")
        report.append(f"{'PASS' if ok else 'FAIL'} {case}")
    save("report.txt", "\n".join(report) + "\n")
    if failing:
        print("1 of 4 tests failed (label fail=" + labels.get("fail", "") + ")", file=sys.stderr, flush=True)
        sys.exit(1)
    result("4 of 4 tests passed")
elif kind == "evaluate":
    print(f"Evaluating {service} in {stage}", flush=True)
    step("  response time p95: 212 ms (objective < 600 ms)")
    step("  error rate: 0.0 % (objective < 1 %)")
    save("sli.json", json.dumps({"response_time_p95": 212, "error_rate": 0.0}))
    result("2 of 2 objectives met; score 100")
elif kind == "release":
    step(f"Releasing {image} in {stage}")
    step("  traffic on the new version: 100 %")
    result(f"Released {image} in {stage}")
elif kind == "rollback":
    step(f"Rolling back {service} in {stage}")
    step("  traffic on the previous version: 100 %")
    result(f"Rolled back {service} in {stage}")
else:
    sys.exit(f"unknown demo job {kind}")
"""


def _demo_jobs() -> str:
    lines = ["kind: Jobs", "jobs:"]
    for task, kind in (("deployment", "deploy"), ("test", "test"), ("evaluation", "evaluate"),
                       ("release", "release"), ("rollback", "rollback")):
        script = json.dumps(DEMO_SCRIPT.strip())
        lines += [f"  - task: {task}", f"    command: [python3, -c, {script}, {kind}]", "    timeout: 2m"]
    return "\n".join(lines) + "\n"


DEMO_JOBS = _demo_jobs()


def ensure_demo_project() -> tuple[Project, bool]:
    """Create `sockshop` with services carts and orders unless it exists. Returns (project, created).

    A demo project from before it had jobs gets them, so its deliveries run.
    """
    existing = Project.objects.filter(name="sockshop").first()
    if existing is not None:
        if not existing.jobs.strip():
            update_jobs(existing, DEMO_JOBS)
        return existing, False
    return create_project("sockshop", DEMO_SHIPYARD, services=["carts", "orders"], jobs=DEMO_JOBS), True
