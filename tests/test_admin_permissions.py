"""Django admin allows what the API allows, to the same people: model permissions alone change nothing that
the API keeps for project managers (manage_projects) or for those who may define jobs (define_jobs)."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from sequences.models import Project
from sequences.notices import outbox as webhooks
from sequences.notices.outbox import Delivery, Webhook

JOBS = "kind: Jobs\njobs:\n  - task: deployment\n    command: [id]\n"


def staff(*codenames) -> Client:
    user = get_user_model().objects.create_user("staff-" + "-".join(codenames)[:100], "", "pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    browser = Client()
    browser.force_login(user)
    return browser


def project_form(project: Project, **changes) -> dict:
    return {"name": project.name, "shipyard": project.shipyard, "jobs": project.jobs,
            "services-TOTAL_FORMS": "0", "services-INITIAL_FORMS": "0", **changes}


def test_model_permissions_alone_do_not_change_a_project(sockshop):
    browser = staff("view_project", "change_project")
    answer = browser.post(f"/admin/sequences/project/{sockshop.id}/change/", project_form(sockshop, jobs=JOBS))
    assert answer.status_code == 403
    assert Project.objects.get(id=sockshop.id).jobs == ""


def test_a_project_manager_may_not_change_jobs_in_admin(sockshop):
    browser = staff("view_project", "change_project", "manage_projects")
    page = browser.get(f"/admin/sequences/project/{sockshop.id}/change/")
    assert page.status_code == 200 and b'name="jobs"' not in page.content
    browser.post(f"/admin/sequences/project/{sockshop.id}/change/", project_form(sockshop, jobs=JOBS))
    assert Project.objects.get(id=sockshop.id).jobs == ""


def test_who_may_define_jobs_changes_them_in_admin(sockshop):
    browser = staff("view_project", "change_project", "manage_projects", "define_jobs")
    answer = browser.post(f"/admin/sequences/project/{sockshop.id}/change/", project_form(sockshop, jobs=JOBS))
    assert answer.status_code == 302
    assert Project.objects.get(id=sockshop.id).jobs.strip() == JOBS.strip()


@pytest.fixture
def hook(sockshop):
    return Webhook.objects.create(project=sockshop, url="https://hooks.example.com/x", secret="whsec_" + "s" * 30)


def test_view_only_staff_see_a_webhook_without_its_secret_and_cannot_send_again(api, sockshop, hook):
    api.trigger(tag="1")
    delivery = Delivery.objects.filter(webhook=hook).first()
    Delivery.objects.filter(id=delivery.id).update(state=Delivery.FAILED, attempts=8)
    browser = staff("view_webhook", "view_delivery")
    page = browser.get(f"/admin/sequences/webhook/{hook.id}/change/")
    assert page.status_code == 200
    assert hook.secret.encode() not in page.content and hook.secret[:8].encode() not in page.content
    listing = browser.get("/admin/sequences/delivery/")
    assert b"send_again" not in listing.content
    browser.post("/admin/sequences/delivery/", {"action": "send_again", "_selected_action": [delivery.id]})
    assert Delivery.objects.get(id=delivery.id).state == Delivery.FAILED


def test_the_webhook_change_page_never_shows_the_secret(admin_user, hook):
    browser = Client()
    browser.force_login(admin_user)
    page = browser.get(f"/admin/sequences/webhook/{hook.id}/change/")
    assert page.status_code == 200
    assert hook.secret.encode() not in page.content
    assert b"never shown again" in page.content


def test_model_permissions_alone_do_not_change_webhooks(sockshop, hook):
    browser = staff("view_webhook", "change_webhook", "delete_webhook", "add_webhook")
    assert browser.post(f"/admin/sequences/webhook/{hook.id}/delete/", {"post": "yes"}).status_code == 403
    assert Webhook.objects.filter(id=hook.id).exists()
    assert browser.get("/admin/sequences/webhook/add/").status_code == 403
    assert webhooks.Webhook.objects.count() == 1
