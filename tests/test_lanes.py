"""One sequence per lane, strict FIFO, position and blocker, release in the same request."""


from sequences.models import Event, SequenceExecution
from tests.helpers import current_task, run_of


def test_a_second_delivery_waits_behind_the_first(api, sockshop):
    first = api.trigger(tag="0.11.1")
    second = api.trigger(tag="0.11.2")
    assert run_of(first).state == SequenceExecution.STARTED
    assert run_of(second).state == SequenceExecution.WAITING
    assert not run_of(second).task_executions.exists()

    waiting = api.executions(keptnContext=second)["sequenceExecutions"][0]
    assert waiting["status"]["state"] == "waiting"
    assert waiting["queue"]["position"] == 1
    assert waiting["queue"]["blockedBy"]["keptnContext"] == first

    # Keptn's recipe: the blocking sequence of dev/carts is the only one started there
    blocking = api.executions(stage="dev", service="carts", status="started")
    assert blocking["totalCount"] == 1
    assert [e["scope"]["keptnContext"] for e in blocking["sequenceExecutions"]] == [first]

    for _ in range(3):
        api.finish(current_task(first))
    last = current_task(first)
    response = api.finish(last)
    assert response.status_code == 202
    # in that same request: the first ended, the second started and its first task was triggered
    assert run_of(first).state == SequenceExecution.FINISHED
    assert run_of(second).state == SequenceExecution.STARTED
    task = current_task(second)
    assert (task.name, task.state) == ("deployment", "triggered")
    assert Event.objects.filter(event_id=task.triggered_id, type="sh.keptn.event.deployment.triggered").exists()


def test_waiting_sequences_start_strictly_in_trigger_order(api, sockshop):
    contexts = [api.trigger(tag=str(i)) for i in range(4)]
    positions = [api.executions(keptnContext=c)["sequenceExecutions"][0]["queue"] for c in contexts]
    assert positions[0] == {"policy": "fifo", "description": "first in, first out", "position": None,
                            "blockedBy": None}
    assert [p["position"] for p in positions[1:]] == [1, 2, 3]
    assert all(p["blockedBy"]["keptnContext"] == contexts[0] for p in positions[1:])
    started_order = [contexts[0]]
    for _ in range(3):
        holder = started_order[-1]
        api.finish(current_task(holder), result="fail")  # ends it at once
        now_started = SequenceExecution.objects.get(stage="dev", state=SequenceExecution.STARTED)
        started_order.append(now_started.context)
    assert started_order == contexts


def test_lanes_are_per_stage_and_service(api, sockshop):
    carts = api.trigger(service="carts")
    orders = api.trigger(service="orders")
    assert run_of(carts).state == run_of(orders).state == SequenceExecution.STARTED


def test_a_sequence_in_another_lane_of_the_same_context_runs_in_parallel(api, sockshop):
    context = api.trigger()
    evaluation = api.trigger(sequence="evaluation", context=context)
    assert evaluation == context
    assert run_of(context, name="evaluation").state == SequenceExecution.STARTED


def test_the_same_sequence_twice_in_one_context_and_stage_is_refused(api, sockshop):
    context = api.trigger()
    response = api.post("/api/v1/event", {
        "type": "sh.keptn.event.dev.delivery.triggered", "shkeptncontext": context,
        "data": {"project": "sockshop", "stage": "dev", "service": "carts"}})
    assert response.status_code == 409
    assert "already runs" in response.json()["message"]


def test_open_tasks_can_be_polled_by_type(api, sockshop):
    first = api.trigger(service="carts")
    api.trigger(service="orders")
    response = api.get("/api/controlPlane/v1/event/triggered/sh.keptn.event.deployment.triggered",
                       project="sockshop", service="carts").json()
    assert [e["shkeptncontext"] for e in response["events"]] == [first]
    assert response["events"][0]["data"]["deployment"] == {"deploymentstrategy": "direct"}
    api.finish(current_task(first))
    response = api.get("/api/controlPlane/v1/event/triggered/sh.keptn.event.deployment.triggered",
                       project="sockshop", service="carts").json()
    assert response["events"] == []


def test_per_context_states_cover_every_stage_reached(api, sockshop):
    context = api.trigger(tag="0.11.1")
    for _ in range(4):
        api.finish(current_task(context))
    states = api.get("/api/controlPlane/v1/sequence/sockshop").json()
    assert states["totalCount"] == 1
    state = states["states"][0]
    assert state["shkeptncontext"] == context and state["service"] == "carts"
    assert state["state"] == "started"
    assert [(s["name"], s["state"]) for s in state["stages"]] == [("dev", "finished"), ("staging", "started")]
    assert state["stages"][0]["image"] == "docker.io/keptnexamples/carts:0.11.1"


def test_the_next_in_line_is_read_off_an_index_without_sorting_the_queue(sockshop):
    """A release costs the same with 10,000 waiting: the database reads the queue's first entry off an
    index in start order (priority, then trigger order) and never sorts the queue."""
    from django.db import connection

    from sequences.store import lanes

    sql, params = lanes._first_two.build(sockshop.id, "dev", "carts").query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A test table of a few rows is cheaper to scan or sort than anything: ask only whether an index
            # serves this order, as the planner will use it for a long queue.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + ("QUERY PLAN " if connection.vendor == "sqlite" else "") + sql, params)
        plan = " ".join(str(part) for row in cursor.fetchall() for part in row)
    assert "seq_lane_queue" in plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


def test_who_holds_a_lane_is_read_off_the_holders_index_not_the_lane_s_history(api, sockshop):
    """A release reads the next in line and whether another context holds the lane in one statement; a lane's
    finished history must not cost it."""
    from django.db import connection

    from sequences.store import lanes

    holder = api.trigger()
    waiting = api.trigger(tag="2")
    assert [(s.context, s.blocked) for s in lanes.next_in_line(sockshop, "dev", "carts")] == [(waiting, True)]
    assert lanes.next_in_line(sockshop, "dev", "orders") == []
    if connection.vendor == "sqlite":  # PostgreSQL's planner has statistics and picks the partial index itself
        sql, params = lanes._first_two.build(sockshop.id, "dev", "carts").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plan = " ".join(str(part) for row in cursor.fetchall() for part in row)
        assert "seq_holders" in plan, plan
