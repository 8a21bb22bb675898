"""Approval rules: N approvals from distinct people, optionally from a group, never from whoever triggered it
when the rule says so; one decline ends it; the page says who approved and who is still needed."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from sequences.configuration import create_project
from sequences.models import ApiToken, ControlAction, SequenceExecution as SE
from tests.conftest import OPS_SHIPYARD, Api, ControlApi, _user
from tests.helpers import current_task

RULE = "              approval: {required: 2, group: release-managers, preventSelfApproval: true}\n"
SHIPYARD = OPS_SHIPYARD.replace("              properties: {pass: automatic, warning: manual}\n",
                                "              properties: {pass: manual, warning: manual}\n" + RULE)


def person(name, *groups, operate=True) -> ControlApi:
    user = _user(name, *(["operate_sequences"] if operate else []))
    for group in groups:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    return ControlApi(ApiToken.issue(user, "t")[1])


@pytest.fixture
def people(db):
    found = {name: person(name, "release-managers") for name in ("alice", "bob", "carol")}
    found["dave"] = person("dave")  # may operate, is not a release manager
    return found


@pytest.fixture
def gated(people):
    return create_project("gated", SHIPYARD.replace("metadata: {name: ops}", "metadata: {name: gated}"),
                          services=["carts"])


def to_approval(api: Api) -> str:
    """A delivery through dev, waiting for production's approval."""
    context = api.trigger(project="gated")
    for _ in range(3):
        api.finish(current_task(context))
    assert SE.objects.get(context=context, stage="production").state == SE.WAITING_FOR_APPROVAL
    return context


def approval_of(context):
    return current_task(context, "production")


def test_two_distinct_release_managers_approve_and_the_triggerer_may_not(people, gated):
    context = to_approval(people["alice"])  # alice triggered it
    task = approval_of(context)
    own = people["alice"].task_command(task, "approve", reason="mine")
    assert own.status_code == 403
    assert own.json()["message"] == ("alice may not approve this task: alice triggered the sequence, and its "
                                     "approval must come from somebody else.")
    outsider = people["dave"].task_command(task, "approve")
    assert outsider.status_code == 403
    assert outsider.json()["message"] == ("dave may not approve this task: it needs the approval of members of "
                                          "group 'release-managers', and dave is not one.")
    first = people["bob"].task_command(task, "approve", reason="checked the canary")
    assert first.status_code == 200
    assert first.json()["state"] == "triggered"  # one of two
    assert first.json()["approvals"]["needed"] == 1
    assert first.json()["approvals"]["words"] == ("1 more approval from group 'release-managers', each from a "
                                                  "different person; not from alice, who triggered it")
    again = people["bob"].task_command(approval_of(context), "approve")
    assert again.status_code == 409
    assert again.json()["message"] == ("bob approved this task already; 1 more approval from other people are "
                                       "needed.")
    assert SE.objects.get(context=context, stage="production").state == SE.WAITING_FOR_APPROVAL
    second = people["carol"].task_command(approval_of(context), "approve")
    assert second.status_code == 200
    assert second.json()["state"] == "finished"
    task = approval_of(context) if approval_of(context).name == "approval" else \
        SE.objects.get(context=context, stage="production").task_executions.get(name="approval")
    assert task.message == "Approved by bob and carol."
    assert [a["by"] for a in task.approvals] == ["bob", "carol"]
    assert current_task(context, "production").name == "deployment"
    trail = list(ControlAction.objects.filter(command="approve").values_list("actor", "state_after"))
    assert trail == [("bob (token t)", "triggered"), ("carol (token t)", "finished")]


def test_one_decline_ends_it_even_after_an_approval(people, gated):
    context = to_approval(people["alice"])
    assert people["bob"].task_command(approval_of(context), "approve").status_code == 200
    declined = people["carol"].task_command(approval_of(context), "decline", reason="error budget spent")
    assert declined.status_code == 200
    run = SE.objects.get(context=context, stage="production")
    assert (run.state, run.result) == (SE.FINISHED, "fail")
    assert "error budget spent" in run.message


def test_the_page_shows_who_approved_and_who_is_still_needed(people, gated, admin_user):
    context = to_approval(people["alice"])
    people["bob"].task_command(approval_of(context), "approve", reason="canary is green")
    browser = Client()
    browser.force_login(admin_user)
    page = browser.get(f"/bridge/project/gated/sequence/{context}").content.decode()
    assert "✔ Approved by <b>bob</b>: “canary is green”" in page
    assert ("Still needed: 1 more approval from group &#x27;release-managers&#x27;, each from a different "
            "person; not from alice, who triggered it.") in page


def test_without_a_rule_one_approval_from_anybody_who_operates_is_enough(ctl, ops):
    context = ctl.trigger(project="ops")
    ctl.finish(current_task(context))
    ctl.finish(current_task(context), result="warning")
    ctl.finish(current_task(context))
    answer = ctl.task_command(current_task(context, "production"), "approve")  # the one who triggered it
    assert (answer.status_code, answer.json()["state"]) == (200, "finished")


@pytest.mark.parametrize("rule,error", [
    ("{required: 0}", "approval.required: must be a whole number of approvers from 1 to 20, not 0"),
    ("{required: two}", "approval.required: must be a whole number of approvers from 1 to 20, not 'two'"),
    ("{required: 2, preventSelfApproval: maybe}", "approval.preventSelfApproval: must be true or false, not 'maybe'"),
    ("{required: 4, group: release-managers}", "approval.required: 4 approvals from group 'release-managers' can "
                                               "never be given: the group has 3 active members."),
    ("{required: 1, group: nobody-here}", "approval.required: 1 approvals from group 'nobody-here' can never be "
                                          "given: the group does not exist."),
])
def test_a_rule_that_cannot_work_is_refused_with_its_line_and_nothing_is_stored(people, admin_api, rule, error):
    shipyard = SHIPYARD.replace(RULE, f"              approval: {rule}\n")
    answer = admin_api.post("/api/controlPlane/v1/project", {"name": "bad", "shipyard": shipyard})
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("The shipyard is not valid: line 28: spec.stages[1].sequences[0]"
                                               ".tasks[0]")
    assert answer.json()["message"].endswith(error)
    assert admin_api.get("/api/controlPlane/v1/project/bad").status_code == 404


def test_a_group_whose_members_may_not_operate_cannot_give_the_approvals(people, admin_api):
    for name in ("erin", "frank"):  # release managers who may only look
        person(name, "release-managers", operate=False)
    shipyard = SHIPYARD.replace(RULE, "              approval: {required: 4, group: release-managers}\n")
    answer = admin_api.post("/api/controlPlane/v1/project", {"name": "bad", "shipyard": shipyard})
    assert answer.status_code == 400
    assert answer.json()["message"].endswith(
        "approval.required: 4 approvals from group 'release-managers' can never be given: the group has 5 active "
        "members, and only 3 of them may operate sequences (approving needs that permission).")
    assert admin_api.get("/api/controlPlane/v1/project/bad").status_code == 404
    group = Group.objects.get(name="release-managers")
    group.permissions.add(Permission.objects.get(codename="operate_sequences"))  # the whole group may now
    assert admin_api.post("/api/controlPlane/v1/project", {"name": "good", "shipyard": shipyard}).status_code == 201


def test_an_approval_rule_on_another_task_is_refused(admin_api):
    shipyard = OPS_SHIPYARD.replace("            - name: deployment\n              startTimeout: 3m\n",
                                    "            - name: deployment\n              startTimeout: 3m\n"
                                    "              approval: {required: 2}\n")
    answer = admin_api.post("/api/controlPlane/v1/project", {"name": "bad", "shipyard": shipyard})
    assert answer.status_code == 400
    assert answer.json()["message"].endswith("approval: an approval rule applies to a task named approval only")
