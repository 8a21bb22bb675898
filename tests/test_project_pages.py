"""Projects managed in the Bridge: create from a pasted or uploaded shipyard, services added and removed, the
shipyard and the jobs edited, with what is wrong shown beside its field and nothing stored; by permission."""

import html
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from sequences.models import Project
from tests.conftest import _user
from tests.helpers import one_stage_shipyard
from tests.test_typos import TYPO

GOOD = one_stage_shipyard("web", [{"name": "deployment"}, {"name": "test"}])
BROKEN = GOOD.replace("tasks:", "tasks: [", 1)  # a YAML error
JOBS = json.dumps({"jobs": [{"name": "deploy", "task": "deployment", "command": ["true"]}]})


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def manager(manager_user):
    return logged_in(manager_user)


@pytest.fixture
def job_author(db):
    return logged_in(_user("job-author", "manage_projects", "define_jobs"))


@pytest.fixture
def viewer(viewer_user):
    return logged_in(viewer_user)


def error_of(page, field: str) -> str:
    text = page.content.decode()
    marker = f'<p class="field-error" id="{field}-error">'
    assert marker in text, f"no error beside {field}"
    return html.unescape(text.split(marker, 1)[1].split("</p>", 1)[0])


def test_a_manager_creates_a_project_from_a_pasted_shipyard_and_sees_its_warnings(manager):
    answer = manager.post("/bridge/projects/new", {"name": "web", "shipyard": TYPO, "services": "carts, orders"})
    assert (answer.status_code, answer["Location"]) == (302, "/bridge/project/web/settings")
    project = Project.objects.get(name="web")
    assert sorted(project.services.values_list("name", flat=True)) == ["carts", "orders"]
    settings = manager.get("/bridge/project/web/settings").content.decode()
    assert "Project &#x27;web&#x27; is created." in settings
    assert "line 7: spec.stages[0].sequence: Bosun does not know this key (did you mean &#x27;sequences&#x27;?)" in settings


def test_a_shipyard_can_be_uploaded_as_a_file(manager):
    upload = SimpleUploadedFile("shipyard.yaml", GOOD.encode(), content_type="text/yaml")
    answer = manager.post("/bridge/projects/new", {"name": "uploaded", "shipyard": "", "shipyard_file": upload})
    assert answer.status_code == 302
    assert Project.objects.get(name="uploaded").shipyard == GOOD
    binary = SimpleUploadedFile("shipyard.yaml", b"\xff\xfe\x00bad", content_type="text/yaml")
    refused = manager.post("/bridge/projects/new", {"name": "binary", "shipyard_file": binary})
    assert refused.status_code == 400
    assert error_of(refused, "shipyard") == "shipyard.yaml is not UTF-8 text: upload the shipyard's YAML file."


def test_what_is_wrong_is_shown_beside_each_field_with_what_was_typed_and_nothing_is_stored(manager, sockshop):
    answer = manager.post("/bridge/projects/new", {"name": "Web Shop", "shipyard": BROKEN, "services": "carts Bad!"})
    assert answer.status_code == 400
    assert error_of(answer, "name").startswith("project name 'Web Shop' is not valid")
    assert error_of(answer, "shipyard").startswith("The shipyard is not valid: ")
    assert "line" in error_of(answer, "shipyard")
    assert error_of(answer, "services").startswith("service name 'Bad!' is not valid")
    page = answer.content.decode()
    assert 'value="Web Shop"' in page and html.escape(BROKEN) in page and 'value="carts Bad!"' in page
    taken = manager.post("/bridge/projects/new", {"name": "sockshop", "shipyard": GOOD})
    assert (taken.status_code, error_of(taken, "name")) == (400, "Project 'sockshop' already exists.")
    assert list(Project.objects.values_list("name", flat=True)) == ["sockshop"]


def test_jobs_need_their_own_permission_when_a_project_is_created(manager, job_author):
    assert 'name="jobs"' not in manager.get("/bridge/projects/new").content.decode()
    refused = manager.post("/bridge/projects/new", {"name": "web", "shipyard": GOOD, "jobs": JOBS})
    assert refused.status_code == 400
    assert error_of(refused, "jobs").startswith("You may not define jobs")
    assert not Project.objects.filter(name="web").exists()
    assert 'name="jobs"' in job_author.get("/bridge/projects/new").content.decode()
    assert job_author.post("/bridge/projects/new", {"name": "web", "shipyard": GOOD, "jobs": JOBS}).status_code == 302
    assert Project.objects.get(name="web").jobs == JOBS


def test_the_shipyard_is_edited_with_the_same_checks(manager, sockshop):
    before = sockshop.shipyard
    refused = manager.post("/bridge/project/sockshop/settings/shipyard", {"shipyard": BROKEN})
    assert refused.status_code == 400
    assert "The shipyard was not saved" in refused.content.decode()
    assert error_of(refused, "shipyard").startswith("The shipyard is not valid: ")
    assert html.escape(BROKEN) in refused.content.decode()  # what was typed, to fix
    assert Project.objects.get(name="sockshop").shipyard == before
    saved = manager.post("/bridge/project/sockshop/settings/shipyard", {"shipyard": GOOD})
    assert (saved.status_code, saved["Location"]) == (302, "/bridge/project/sockshop/settings#shipyard")
    assert Project.objects.get(name="sockshop").shipyard == GOOD


def test_jobs_are_edited_by_whoever_may_define_them_and_a_bad_line_is_named(manager, job_author, sockshop):
    assert manager.post("/bridge/project/sockshop/settings/jobs", {"jobs": JOBS}).status_code == 302
    assert Project.objects.get(name="sockshop").jobs == ""  # refused: a manager may not define jobs
    bad = "jobs:\n  - task: deployment\n    command: 42\n"
    refused = job_author.post("/bridge/project/sockshop/settings/jobs", {"jobs": bad})
    assert refused.status_code == 400
    assert error_of(refused, "jobs").startswith("The job definitions are not valid: ")
    assert "line 3" in error_of(refused, "jobs")
    assert Project.objects.get(name="sockshop").jobs == ""
    assert job_author.post("/bridge/project/sockshop/settings/jobs", {"jobs": JOBS}).status_code == 302
    assert Project.objects.get(name="sockshop").jobs == JOBS


def test_services_are_added_and_removed(manager, sockshop):
    assert manager.post("/bridge/project/sockshop/settings/service", {"service": "payment"}).status_code == 302
    again = manager.post("/bridge/project/sockshop/settings/service", {"service": "payment"})
    assert (again.status_code, error_of(again, "service")) == (
        400, "Service 'payment' already exists in project 'sockshop'.")
    bad = manager.post("/bridge/project/sockshop/settings/service", {"service": "Pay Ment"})
    assert bad.status_code == 400 and 'value="Pay Ment"' in bad.content.decode()
    assert manager.post("/bridge/project/sockshop/settings/service/orders/remove").status_code == 302
    assert sorted(sockshop.services.values_list("name", flat=True)) == ["carts", "payment"]


def test_a_viewer_sees_the_settings_and_may_change_nothing(viewer, sockshop):
    page = viewer.get("/bridge/project/sockshop/settings").content.decode()
    assert "You may look, not change" in page and "<form" not in page.split('id="main"', 1)[1]
    assert "＋ New project" not in viewer.get("/bridge/").content.decode()
    assert viewer.get("/bridge/projects/new").status_code == 302
    before = Project.objects.get(name="sockshop").shipyard
    for path, body in (("shipyard", {"shipyard": GOOD}), ("jobs", {"jobs": JOBS}), ("service", {"service": "x"}),
                       ("service/carts/remove", {}), ("delete", {"confirm": "sockshop"})):
        assert viewer.post(f"/bridge/project/sockshop/settings/{path}", body).status_code == 302
    found = Project.objects.get(name="sockshop")
    assert (found.shipyard, found.jobs) == (before, "")
    assert sorted(found.services.values_list("name", flat=True)) == ["carts", "orders"]


def test_deleting_a_project_asks_for_its_name(manager, sockshop):
    refused = manager.post("/bridge/project/sockshop/settings/delete", {"confirm": "sock"})
    assert (refused.status_code, error_of(refused, "confirm")) == (
        400, "Type the project's name, sockshop, to delete it.")
    assert Project.objects.filter(name="sockshop").exists()
    deleted = manager.post("/bridge/project/sockshop/settings/delete", {"confirm": "sockshop"})
    assert (deleted.status_code, deleted["Location"]) == (302, "/bridge/")
    assert not Project.objects.filter(name="sockshop").exists()


def test_odd_input_on_the_new_routes_gets_a_4xx_or_a_page_never_a_500_and_changes_nothing(job_author, ctl, sockshop):
    from sequences.models import SequenceExecution as SE

    context = ctl.trigger()
    task = SE.objects.get(context=context).task_executions.get()
    before = (Project.objects.get(name="sockshop").shipyard, list(SE.objects.values_list("id", "state")))
    huge = SimpleUploadedFile("shipyard.yaml", b"a: b\n" * 60_000, content_type="text/yaml")
    answers = [
        job_author.post("/bridge/projects/new", {"name": "x" * 500, "shipyard": "\x00", "services": "a,,b c\x00"}),
        job_author.post("/bridge/projects/new", {"name": "big", "shipyard_file": huge}),
        job_author.post("/bridge/project/sockshop/settings/shipyard", {"shipyard": "spec: [unclosed"}),
        job_author.post("/bridge/project/sockshop/settings/jobs", {"jobs": "jobs: {not: a list}"}),
        job_author.post("/bridge/project/sockshop/settings/service/no-such/remove"),
        job_author.post("/bridge/project/sockshop/settings/delete", {}),
        job_author.get(f"/bridge/project/sockshop/sequence/{context}/task/{task.triggered_id}/log/view",
                       {"after": "-1", "cut": "x" * 50, "q": "\x00" * 300}),
        job_author.post(f"/bridge/project/sockshop/sequence/{context}/rerun", {"stage": "", "sequence": "y" * 500}),
        ctl.post(f"/api/controlPlane/v1/sequence/sockshop/{context}/retrigger",
                 {"stage": "dev", "sequence": "z" * 101, "newContext": "perhaps"}),
        ctl.post(f"/api/controlPlane/v1/sequence/sockshop/{context}/retrigger", ["not", "an", "object"]),
    ]
    assert [a.status_code for a in answers] == [400, 400, 400, 400, 302, 400, 200, 302, 400, 400]
    assert (Project.objects.get(name="sockshop").shipyard, list(SE.objects.values_list("id", "state"))) == before
    assert list(Project.objects.values_list("name", flat=True)) == ["sockshop"]
