"""How a context reads, decided once (sequences/rules/outcomes.py) and the same in the API, every Bridge page and the
CLI: a delivery that failed in production reads "Failed (rolled back)" even when the rollback after it passed;
aborted, timed out, superseded and warnings read as such."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from sequences.configuration import create_project
from sequences.demo import DEMO_SHIPYARD
from sequences.engine import Engine
from tests.helpers import current_task, one_stage_shipyard, run_of
from tests.test_task_flow import finish_all


def failed_then_rolled_back(api):
    context = api.trigger()
    finish_all(api, context)
    finish_all(api, context, "staging")
    api.finish(current_task(context, "production"), result="fail")
    api.finish(current_task(context, "production", "rollback"))
    assert run_of(context, "production", "rollback").result == "pass"
    return "sockshop", context, "production", "Failed (rolled back)"


def aborted(api):
    context = api.trigger()
    assert api.post(f"/api/controlPlane/v1/sequence/sockshop/{context}/control",
                    {"state": "abort", "mode": "force"}).status_code == 200
    return "sockshop", context, "dev", "Aborted"


def timed_out(api):
    create_project("slow", one_stage_shipyard("slow", [{"name": "deployment", "startTimeout": "1m"}]),
                   services=["carts"])
    with time_machine.travel(timezone.now(), tick=False) as clock:
        context = api.trigger(project="slow")
        clock.shift(timedelta(minutes=1, seconds=1))
        assert Engine(repair_every=3600).step()
    return "slow", context, "dev", "Timed out"


def superseded(api):
    create_project("newest", DEMO_SHIPYARD.replace("shipyard-sockshop", "newest"), services=["carts"])
    first = api.trigger(project="newest", tag="1")
    older = api.trigger(project="newest", tag="2")
    api.trigger(project="newest", tag="3")
    for _ in range(4):
        api.finish(current_task(first))
    return "newest", older, "dev", "Superseded"


def with_warnings(api):
    create_project("warn", one_stage_shipyard("warn", [{"name": "evaluation"}]), services=["carts"])
    context = api.trigger(project="warn")
    api.finish(current_task(context), result="warning")
    return "warn", context, "dev", "Succeeded with warnings"


@pytest.fixture(params=[failed_then_rolled_back, aborted, timed_out, superseded, with_warnings],
                ids=lambda f: f.__name__)
def ended(request, api, admin_user, sockshop):
    return request.param(api)


def test_the_api_says_how_the_context_and_its_executions_ended(api, ended):
    project, context, stage, label = ended
    states = api.get(f"/api/controlPlane/v1/sequence/{project}", keptnContext=context).json()["states"]
    assert states[0]["outcome"]["label"] == label
    assert next(s for s in states[0]["stages"] if s["name"] == stage)["outcome"]["label"] == label
    executions = api.get("/api/controlPlane/v1/sequence-execution", project=project, keptnContext=context,
                         stage=stage).json()["sequenceExecutions"]
    shown = executions[-1]  # the oldest in the stage: the delivery, not the rollback after it
    assert shown["outcome"]["label"] == label


def test_the_bridge_says_it_on_the_sequence_page_the_list_and_the_environment(admin_user, ended):
    project, context, stage, label = ended
    browser = Client()
    browser.force_login(admin_user)
    page = browser.get(f"/bridge/project/{project}/sequence/{context}").content.decode()
    headline = page.split('id="context-badge"', 1)[1].split("</span>", 2)[1]
    assert headline.strip() == label
    listing = browser.get(f"/bridge/project/{project}/sequence/").content.decode()
    row = listing.split(context[:8], 1)[1].split("</tr>", 1)[0]
    assert f"</span> {label}</span>" in row
    environment = browser.get(f"/bridge/project/{project}/").content.decode()
    lane = environment.split('class="lane-latest"', 1)[1].split("</p>", 1)[0] if stage == "dev" else \
        environment.split('class="lane-latest"')[-1].split("</p>", 1)[0]
    assert f"</span> {label}</span>" in lane


KEYS = {"Failed (rolled back)": "failed", "Aborted": "aborted", "Timed out": "timedout", "Superseded": "superseded",
        "Succeeded with warnings": "warning"}


def test_the_bridge_s_state_filter_finds_a_context_by_how_it_reads_and_by_nothing_else(admin_user, ended):
    project, context, _, label = ended
    browser = Client()
    browser.force_login(admin_user)
    found = {key for key in ("succeeded", "warning", "failed", "aborted", "timedout", "superseded", "running")
             if context[:8] in browser.get(f"/bridge/project/{project}/sequence/", {"state": key}).content.decode()}
    assert found == {KEYS[label]}


RESULTS = {"Failed (rolled back)": "fail", "Aborted": "aborted", "Timed out": "timedOut", "Superseded": "fail",
           "Succeeded with warnings": "warning"}


@pytest.mark.django_db(transaction=True)
def test_the_sdk_reads_the_same_outcome(api, ended, live_server):
    from bosun.sdk import Client as Sdk

    project, context, _, label = ended
    sequence = Sdk(live_server.url, api.headers["HTTP_X_TOKEN"]).sequence(context, project)
    assert sequence.outcome()["label"] == label
    assert sequence.result() == RESULTS[label]
