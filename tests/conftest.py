import os
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from sequences.configuration import create_project
from sequences.demo import DEMO_SHIPYARD
from sequences.models import ApiToken

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API inside Django tests
os.environ.setdefault("BOSUN_LIVE", "0")  # no pusher thread in the test process; up and run_engine start theirs


def pytest_configure(config):
    """Under pytest-xdist (make test runs 2 workers), each worker gets a Redis database of its own for the
    cache and the channel layer: one worker's cache.clear() or pushes never reach another's tests. The
    servers tests start as subprocesses inherit it through REDIS_URL."""
    worker, url = os.environ.get("PYTEST_XDIST_WORKER", ""), os.environ.get("REDIS_URL", "")
    if not (worker.startswith("gw") and url):
        return
    from django.conf import settings

    base, _, number = url.rpartition("/")
    own = f"{base}/{(int(number) if number.isdigit() else 0) + 1 + int(worker[2:])}"
    os.environ["REDIS_URL"] = own
    settings.CACHES["default"]["LOCATION"] = own
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [own]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"],
    }


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    """Failed-credential counters live in the cache; each test starts with none."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _fresh_webhook_cache():
    """Which projects have webhooks is cached per process: a rolled-back test's webhook must not linger."""
    from sequences.notices import outbox as webhooks

    webhooks._cache.update(at=-webhooks.CACHE_SECONDS, generation=None)  # read again at the next event


def _user(username, *permissions, superuser=False):
    User = get_user_model()
    if superuser:
        return User.objects.create_superuser(username, "", "pw-" + username)
    user = User.objects.create_user(username, "", "pw-" + username)
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


class Api:
    """A REST client speaking JSON with an API token, through Django's whole request stack."""

    def __init__(self, token: str | None):
        self.client = Client()
        self.headers = {"HTTP_X_TOKEN": token} if token else {}

    def get(self, path, **params):
        return self.client.get(path, params, **self.headers)

    def post(self, path, body=None, content_type="application/json", **headers):
        import json

        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        return self.client.post(path, data, content_type=content_type, **self.headers, **headers)

    def put(self, path, body):
        import json

        return self.client.put(path, json.dumps(body), content_type="application/json", **self.headers)

    def delete(self, path):
        return self.client.delete(path, **self.headers)

    # --- the Keptn dialect ---

    def trigger(self, service="carts", stage="dev", sequence="delivery", tag="0.11.1", context=None,
                project="sockshop", **data):
        event = {
            "specversion": "1.0",
            "source": "test",
            "type": f"sh.keptn.event.{stage}.{sequence}.triggered",
            "data": {"project": project, "stage": stage, "service": service,
                     "configurationChange": {"values": {"image": f"docker.io/keptnexamples/{service}:{tag}"}},
                     **data},
        }
        if context:
            event["shkeptncontext"] = context
        response = self.post("/api/v1/event", event)
        assert response.status_code == 202, response.json()
        return response.json()["keptnContext"]

    def task_event(self, task, kind, source="executor", result=None, status=None, **data):
        """Send `sh.keptn.event.<task name>.<kind>` for the task (a row of TaskExecution)."""
        body = {**data}
        if result:
            body["result"] = result
        if status:
            body["status"] = status
        return self.post("/api/v1/event", {
            "specversion": "1.0", "id": str(uuid.uuid4()), "source": source,
            "type": f"sh.keptn.event.{task.name}.{kind}", "shkeptncontext": task.sequence_execution.context,
            "triggeredid": task.triggered_id, "data": body,
        })

    def finish(self, task, result="pass", source="executor", **data):
        response = self.task_event(task, "finished", source=source, result=result, status="succeeded", **data)
        assert response.status_code == 202, response.json()
        return response

    def executions(self, **params):
        response = self.get("/api/controlPlane/v1/sequence-execution", project="sockshop", **params)
        assert response.status_code == 200, response.json()
        return response.json()


@pytest.fixture
def admin_user(db):
    return _user("admin-user", superuser=True)


@pytest.fixture
def operator_user(db):
    return _user("operator", "operate_sequences")


@pytest.fixture
def viewer_user(db):
    return _user("viewer")


@pytest.fixture
def admin_api(admin_user):
    return Api(ApiToken.issue(admin_user, "tests")[1])


@pytest.fixture
def operator_api(operator_user):
    return Api(ApiToken.issue(operator_user, "tests")[1])


@pytest.fixture
def manager_user(db):
    """May create and change projects, but not define jobs (which runs commands on executor hosts)."""
    return _user("manager", "manage_projects")


@pytest.fixture
def manager_api(manager_user):
    return Api(ApiToken.issue(manager_user, "tests")[1])


@pytest.fixture
def viewer_api(viewer_user):
    return Api(ApiToken.issue(viewer_user, "tests")[1])


@pytest.fixture
def api(operator_api):
    return operator_api


# The demo's shipyard as a Keptn user has it: strict FIFO in every lane (the demo's dev uses `newest`).
KEPTN_SHIPYARD = DEMO_SHIPYARD.replace("          queue: newest  # Bosun: when dev frees up, only the newest waiting delivery runs\n", "")
assert KEPTN_SHIPYARD != DEMO_SHIPYARD


@pytest.fixture
def sockshop(db):
    """The demo project as Keptn runs it: dev -> staging -> production, carts and orders, rollback on failure."""
    return create_project("sockshop", KEPTN_SHIPYARD, services=["carts", "orders"])


class ControlApi(Api):
    def control(self, context, state, project="sockshop", key=None, **fields):
        headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
        return self.post(f"/api/controlPlane/v1/sequence/{project}/{context}/control",
                         {"state": state, **fields}, **headers)

    def task_command(self, task, command, key=None, **body):
        headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
        return self.post(f"/api/controlPlane/v1/task/{task.triggered_id}/{command}", body, **headers)


@pytest.fixture
def ctl(operator_user):
    return ControlApi(ApiToken.issue(operator_user, "control")[1])


OPS_SHIPYARD = """\
apiVersion: spec.keptn.sh/0.2.3
kind: Shipyard
metadata: {name: ops}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks:
            - name: deployment
              startTimeout: 3m
            - name: test
              timeout: 30m
              heartbeatTimeout: 1m
            - name: release
        - name: remediation
          tasks:
            - name: action
            - name: evaluation
              triggeredAfter: 10m
    - name: production
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks:
            - name: approval
              properties: {pass: automatic, warning: manual}
            - name: deployment
"""


@pytest.fixture
def ops(db):
    """A project with Bosun's timeout extensions, a delayed task and an approval."""
    return create_project("ops", OPS_SHIPYARD, services=["carts"])
