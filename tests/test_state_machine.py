"""The state machine (sequences/rules/machine.py) is the one answer to "is this allowed": for every state a
sequence can be brought to, the API applies exactly the commands the table allows (409 for the others), the
Bridge offers a button exactly for those, and docs/states.md says what the table says."""

import re
from pathlib import Path

import pytest
from django.test import Client

from sequences.models import SequenceExecution as SE
from sequences.models import TaskExecution as TE
from sequences.rules import machine
from sequences.rules.statesdoc import markdown
from sequences.transitions.moves import IllegalMove, enter
from tests.helpers import current_task

ROOT = Path(__file__).resolve().parent.parent


def run_of(context, stage):
    return SE.objects.get(context=context, stage=stage)


def to_started(ctl):
    return ctl.trigger(project="ops"), "dev"


def to_waiting(ctl):
    ctl.trigger(project="ops", tag="first")
    return ctl.trigger(project="ops", tag="second"), "dev"


def to_paused(ctl):
    context = ctl.trigger(project="ops")
    assert ctl.control(context, "pause", project="ops").status_code == 200
    return context, "dev"


def to_aborting(ctl):
    context = ctl.trigger(project="ops")
    ctl.task_event(current_task(context), "started")
    assert ctl.control(context, "abort", project="ops").json()["state"] == SE.ABORTING
    return context, "dev"


def to_approval(ctl):
    context = ctl.trigger(project="ops")
    ctl.finish(current_task(context))
    ctl.finish(current_task(context), result="warning")
    ctl.finish(current_task(context))
    return context, "production"


def to_finished(ctl):
    context = ctl.trigger(project="ops", stage="dev", sequence="remediation")
    ctl.finish(current_task(context, name="remediation"), result="fail")
    return context, "dev"


def to_aborted(ctl):
    context = ctl.trigger(project="ops")
    assert ctl.control(context, "abort", project="ops", mode="force").status_code == 200
    return context, "dev"


def to_aborted_with_a_running_task(ctl):
    context = ctl.trigger(project="ops")
    ctl.task_event(current_task(context), "started")
    assert ctl.control(context, "abort", project="ops", mode="force").status_code == 200
    return context, "dev"


def to_timed_out(ctl):
    context = ctl.trigger(project="ops")
    from django.utils import timezone

    from sequences.transitions import timeouts

    TE.objects.filter(sequence_execution__context=context).update(start_deadline=timezone.now())
    assert timeouts.fire_due() == 1
    return context, "dev"


def _freeze():
    from datetime import timedelta

    from django.utils import timezone

    from sequences.freeze_config import create_window
    from sequences.models import Project

    now = timezone.now()
    create_window(Project.objects.get(name="ops"), {"name": "freeze", "start": (now - timedelta(minutes=1)).isoformat(),
                                                    "end": (now + timedelta(hours=1)).isoformat()},
                  actor="test", source="api")


def to_waiting_in_a_frozen_lane(ctl):
    _freeze()
    return ctl.trigger(project="ops"), "dev"


def to_held_by_a_freeze_window(ctl):
    context = ctl.trigger(project="ops")
    _freeze()
    ctl.finish(current_task(context))
    assert run_of(context, "dev").frozen_by == "freeze"
    return context, "dev"


STATES = {
    SE.STARTED: to_started, SE.WAITING: to_waiting, SE.PAUSED: to_paused, SE.ABORTING: to_aborting,
    "waiting, in a frozen lane": to_waiting_in_a_frozen_lane, "paused, held by a freeze window": to_held_by_a_freeze_window,
    SE.WAITING_FOR_APPROVAL: to_approval, SE.FINISHED: to_finished, SE.ABORTED: to_aborted,
    "aborted, its task abandoned while an executor ran it": to_aborted_with_a_running_task,
    SE.TIMED_OUT: to_timed_out,
}
SEQUENCE_COMMANDS = [c.name for c in machine.SEQUENCE_COMMANDS]


def allowed(run) -> set[str]:
    abandoned = run.state == SE.ABORTED and TE.objects.filter(
        sequence_execution=run, state=TE.ABANDONED, kill_requested_at__isnull=True).exclude(executors={}).exists()
    return set(machine.run_commands(run.state, abandoned_with_executor=abandoned, frozen=run.frozen()))


def as_request(command: str) -> dict:
    state, _, mode = command.partition(":")
    return {"state": state, **({"mode": mode} if mode else {})}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("command", SEQUENCE_COMMANDS)
def test_the_api_applies_a_sequence_command_exactly_where_the_table_allows_it(ctl, ops, state, command):
    from django.contrib.auth.models import Permission, User

    User.objects.get(username="operator").user_permissions.add(Permission.objects.get(codename="pass_freezes"))
    context, stage = STATES[state](ctl)
    run = run_of(context, stage)
    assert run.state == state.split(",")[0]
    rerun = command == "retrigger"
    expected = (201 if rerun else 200) if command in allowed(run) else 409
    listed = ctl.get("/api/controlPlane/v1/sequence-execution", project="ops", keptnContext=context,
                     stage=stage).json()["sequenceExecutions"][0]["commands"]
    assert set(listed) == allowed(run)  # what the CLI offers to abort, and scripts read
    if rerun:
        response = ctl.post(f"/api/controlPlane/v1/sequence/ops/{context}/retrigger", {"stage": stage})
    elif command == "let-through":
        response = ctl.post(f"/api/controlPlane/v1/sequence/ops/{context}/let-through",
                            {"stage": stage, "reason": "checked"})
    else:
        response = ctl.control(context, project="ops", stage=stage, **as_request(command))
    assert response.status_code == expected, response.json()
    if expected == 409:
        assert response.json()["message"] == (
            f"Sequence '{run.name}' in stage '{stage}' is {run.state}; it cannot be re-run. Abort it first, or "
            "wait for it to end." if rerun else
            f"Stage '{stage}' of context {context} is {run.state}; it cannot be let through. Only a sequence that "
            "waits in a frozen lane, or holds under a freeze window, is let through." if command == "let-through" else
            f"Nothing in context {context} can be {machine.COMMANDS[command].done}: it is {run.state}." + (
                f" Its {run.name} in {stage} holds under the freeze window 'freeze': it goes on when the window "
                "ends, or when somebody lets it through." if command == "resume" and run.frozen_by else ""))
        assert run_of(context, stage).state == run.state


BUTTONS = {"pause": "pause-dialog", "resume": "resume-dialog"}


@pytest.mark.parametrize("state", STATES)
def test_the_bridge_offers_a_button_exactly_where_the_table_allows_the_command(ctl, ops, admin_user, state):
    context, stage = STATES[state](ctl)
    runs = list(SE.objects.filter(context=context))
    commands = set().union(*(allowed(run) for run in runs))
    client = Client()
    client.force_login(admin_user)
    page = client.get(f"/bridge/project/ops/sequence/{context}").content.decode()
    offered = set(re.findall(r'data-open-dialog="(pause-dialog|resume-dialog|abort-dialog)"', page))
    expected = {BUTTONS[c] for c in commands if c in BUTTONS}
    if commands & {"abort:graceful", "abort:force", "abort:kill"}:
        expected.add("abort-dialog")
    assert offered == expected
    reruns = set(re.findall(r'data-rerun-stage="([\w-]+)"', page))
    assert reruns == {run.stage for run in runs if "retrigger" in allowed(run)}
    passes = set(re.findall(r'data-let-through-stage="([\w-]+)"', page))
    assert passes == {run.stage for run in runs if "let-through" in allowed(run)}
    modes = set(re.findall(r'name="mode" value="(\w+)"', page))
    assert modes == {c.partition(":")[2] for c in commands if c.startswith("abort:")}


@pytest.mark.parametrize("state", [SE.STARTED, SE.PAUSED, SE.ABORTING, SE.WAITING_FOR_APPROVAL, SE.FINISHED,
                                   SE.TIMED_OUT, SE.ABORTED])
def test_task_commands_in_the_api_and_the_bridge_follow_the_table(ctl, ops, admin_user, state):
    context, stage = STATES[state](ctl)
    run = run_of(context, stage)
    task = run.task_executions.order_by("-index").first()
    can = set(machine.task_commands(task.state, run.state, task.name,
                                    failed_here=getattr(run.retry_point(), "id", None) == task.id))
    client = Client()
    client.force_login(admin_user)
    page = client.get(f"/bridge/project/ops/sequence/{context}").content.decode()
    shown = set(re.findall(rf'data-open-dialog="(finish|kill|approve|decline|retry)-{task.triggered_id}"', page))
    assert shown == can
    for command in ("approve", "finish", "retry"):  # each changes state: one allowed and one refused at most
        body = {"reason": "checked", **({"result": "pass", "status": "succeeded"} if command == "finish" else {})}
        response = ctl.task_command(run_of(context, stage).task_executions.get(id=task.id), command, **body)
        assert response.status_code == (200 if command in can else 409), response.json()
        if command in can:
            break


def test_a_move_the_table_does_not_allow_is_refused_where_states_are_assigned(ctl, ops):
    context, _ = to_finished(ctl)
    run = run_of(context, "dev")
    with pytest.raises(IllegalMove):
        enter(run, "pause")
    assert run.state == SE.FINISHED


def test_every_command_names_moves_of_the_table_and_states_it_knows():
    run_states = {s for s, _ in machine.Run.CHOICES}
    task_states = {s for s, _ in machine.Task.CHOICES}
    for command in machine.COMMANDS.values():
        assert set(command.run_states) <= run_states
        assert set(command.task_states) <= task_states
        assert set(command.moves) <= set(machine.RUN_MOVES) | set(machine.TASK_MOVES)
    for move in machine.RUN_MOVES.values():
        assert set(move.sources) | set(move.targets) <= run_states
    for move in machine.TASK_MOVES.values():
        assert set(move.sources) | set(move.targets) <= task_states | {""}


def test_docs_states_md_is_what_the_state_machine_says():
    written = (ROOT / "docs" / "states.md").read_text()
    assert written == markdown(), ("docs/states.md is stale: run `python -m sequences.rules.statesdoc > "
                                   "docs/states.md` and commit it")


@pytest.mark.parametrize("state", STATES)
def test_django_admin_says_what_may_be_done_as_the_table_does(ctl, ops, admin_user, state):
    context, stage = STATES[state](ctl)
    run = run_of(context, stage)
    client = Client()
    client.force_login(admin_user)
    page = client.get(f"/admin/sequences/sequenceexecution/{run.id}/change/").content.decode()
    shown = page.split("What may be done now", 1)[1].split('<div class="readonly">', 1)[1].split("</div>", 1)[0]
    labels = [machine.COMMANDS[c.name].label for c in machine.SEQUENCE_COMMANDS if c.name in allowed(run)]
    assert shown.strip() == (", ".join(labels) or "nothing: it has ended")
