"""Requests exactly as Keptn's Go clients (go-utils' APISet, the go-sdk) send them, and their answers decoded
as those clients' models type them."""

from tests.helpers import current_task, run_of


def control(api, context, body):
    return api.post(f"/api/controlPlane/v1/sequence/sockshop/{context}/control", body)


def test_pause_resume_and_abort_with_the_empty_stage_go_utils_sends_apply_to_the_whole_context(api, sockshop):
    context = api.trigger()
    api.finish(current_task(context))
    # go-utils' SequenceControlCommand has no omitempty: the CLI's default sends "stage": ""
    assert control(api, context, {"state": "pause", "stage": ""}).json()["state"] == "paused"
    assert run_of(context).state == "paused"
    assert control(api, context, {"state": "resume", "stage": ""}).json()["state"] == "started"
    answer = control(api, context, {"state": "abort", "stage": ""})
    assert answer.status_code == 200
    assert [run["state"] for run in answer.json()["sequenceExecutions"]] == ["aborted"]


def test_a_page_of_sequence_executions_decodes_as_keptn_s_sequence_execution_result(api, sockshop):
    for service in ("carts", "orders", "carts"):
        api.trigger(service=service)
    first = api.executions(pageSize=2)
    assert isinstance(first["nextPageKey"], int) and not isinstance(first["nextPageKey"], bool)
    last = api.executions(pageSize=2, nextPageKey=first["nextPageKey"])
    assert (last["pageSize"], last["totalCount"], "nextPageKey" in last) == (1, 3, False)
