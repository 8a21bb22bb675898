"""Prepared queries (sequences/store/prepared.py) give what Django's own QuerySet gives, for any arguments."""

import threading

import pytest
from django.db import connection, transaction

from sequences.models import SequenceExecution as SE
from sequences.models import TaskExecution as TE
from sequences.store import lanes, locks
from sequences.store.prepared import Prepared

from .helpers import current_task


def fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def test_a_task_with_its_sequence_and_project_is_the_one_the_orm_reads(api, sockshop):
    contexts = [api.trigger(service=service) for service in ("carts", "orders")]
    api.finish(current_task(contexts[0]), result="warning", extra={"nested": [1, {"a": None}]})
    for context in contexts:
        expected = TE.objects.select_related("sequence_execution__project").filter(
            sequence_execution__context=context).order_by("index")
        for task in expected:
            found = locks.lock_task(task.triggered_id)
            assert fields(found) == fields(task)
            assert fields(found.sequence_execution) == fields(task.sequence_execution)
            assert fields(found.sequence_execution.project) == fields(task.sequence_execution.project)
    assert locks.lock_task("no-such-task") is None


def test_the_line_of_a_lane_with_its_annotation_is_the_one_the_orm_reads(api, sockshop):
    holder = api.trigger()
    waiting = [api.trigger() for _ in range(3)]
    api.trigger(context=holder, sequence="delivery", stage="staging")  # another lane: not in this line
    in_line = lanes.next_in_line(sockshop, "dev", "carts")
    expected = list(lanes.line(sockshop, "dev", "carts")[:2])
    assert [fields(s) for s in in_line] == [fields(s) for s in expected]
    assert [s.context for s in in_line] == waiting[:2]
    assert [s.blocked for s in in_line] == [True, True]
    assert lanes.next_in_line(sockshop, "dev", "no-such-service") == []


def test_fixed_values_of_the_query_stay_and_arguments_change(api, sockshop):
    first, second = api.trigger(service="carts"), api.trigger(service="orders")
    started = Prepared(lambda service: SE.objects.filter(service=service, state=SE.STARTED).values_list("context"),
                       str, values=True)
    assert started("carts") == [(first,)]
    assert started("orders") == [(second,)]
    assert started("nothing") == []


def test_a_fixed_value_with_quotes_and_percent_signs_reads_exactly_the_rows_it_names(api, sockshop):
    odd, plain = api.trigger(service="carts"), api.trigger(service="orders")
    SE.objects.filter(context=odd).update(message="it's 100% 'done' %s")
    SE.objects.filter(context=plain).update(message="its 100 done")
    named = Prepared(lambda service: SE.objects.filter(service=service, message="it's 100% 'done' %s")
                     .values_list("context"), str, values=True)
    assert named("carts") == [(odd,)]
    assert named("orders") == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL")
def test_values_a_prepared_query_fixes_are_written_into_its_statement_and_arguments_stay_parameters(api, sockshop):
    api.trigger()
    api.trigger()  # waits: the line of its lane is read
    lanes.next_in_line(sockshop, "dev", "carts")
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s",
                       ['%FROM "sequences_sequenceexecution"%queue_priority%'])
        statements = [row[0] for row in cursor.fetchall()]
    line = [s for s in statements if "\"state\" = 'waiting'" in s]
    assert len(line) == 1, statements
    assert "'carts'" not in line[0] and "$1" in line[0]  # the lane's own values are the call's parameters


@pytest.mark.django_db(transaction=True)  # the other thread reads what this one committed
def test_each_connection_compiles_its_own(api, sockshop):
    context = api.trigger()
    task = current_task(context)
    seen = []

    def other_thread():
        try:
            with transaction.atomic():  # as every caller: the lock holds until the transaction ends
                seen.append(locks.lock_task(task.triggered_id).triggered_id)
        except Exception as exc:
            seen.append(repr(exc))
        finally:
            connection.close()

    with transaction.atomic():
        locks.lock_task(task.triggered_id)
    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert seen == [task.triggered_id]


def test_save_writes_what_django_s_save_writes(sockshop):
    from datetime import timedelta

    from django.db import DatabaseError
    from django.utils import timezone

    from sequences.store.prepared import save

    mine = SE(project=sockshop, stage="dev", service="carts", name="delivery", context="c-1", triggered_id="t-1",
              input_data={"deep": {"list": [1, "two", None]}, "ü": "ß"}, tasks=[{"name": "x"}], holds_lane=True)
    django = SE(project=sockshop, stage="dev", service="carts", name="delivery", context="c-2", triggered_id="t-2",
                input_data=mine.input_data, tasks=mine.tasks, holds_lane=True)
    save(mine)
    django.save()
    assert mine.pk and mine.pk != django.pk and not mine._state.adding
    ignore = {"id", "execution_id", "context", "triggered_id", "triggered_at", "updated_at"}
    stored = {k: v for k, v in fields(SE.objects.get(pk=mine.pk)).items() if k not in ignore}
    assert stored == {k: v for k, v in fields(SE.objects.get(pk=django.pk)).items() if k not in ignore}

    before = SE.objects.get(pk=mine.pk).updated_at
    mine.state, mine.message = SE.STARTED, "only these"
    mine.started_at = timezone.now() - timedelta(seconds=5)
    save(mine, ["state", "updated_at"])
    stored = SE.objects.get(pk=mine.pk)
    assert (stored.state, stored.message, stored.started_at) == (SE.STARTED, "", None)
    assert stored.updated_at > before

    save(mine)  # every field
    assert SE.objects.get(pk=mine.pk).message == "only these"

    gone = SE.objects.get(pk=django.pk)
    SE.objects.filter(pk=gone.pk).delete()
    with pytest.raises(DatabaseError):
        save(gone, ["state"])


def test_save_stores_odd_values_and_fields_not_loaded_as_django_does(sockshop):
    """The short cut for plain values must not change what is stored for anything else: a field that was
    not loaded is read before it is written, a number given as text is converted, a lazy string is made
    text, a datetime in another zone is stored as the same moment."""
    from datetime import datetime, timedelta
    from datetime import timezone as tz

    from django.utils import timezone
    from django.utils.functional import lazy

    from sequences.store.prepared import save

    run = SE.objects.create(project=sockshop, stage="dev", service="carts", name="delivery", context="c-odd",
                            triggered_id="t-odd", message="kept", input_data={"k": 1})
    partial = SE.objects.only("id", "state").get(pk=run.pk)
    partial.state = SE.STARTED
    save(partial, ["state", "message", "input_data"])
    stored = SE.objects.get(pk=run.pk)
    assert (stored.state, stored.message, stored.input_data) == (SE.STARTED, "kept", {"k": 1})

    moment = timezone.now().replace(microsecond=123456)
    stored.queue_priority = "3"
    stored.message = lazy(lambda: "made lazily", str)()
    stored.started_at = moment.astimezone(tz(timedelta(hours=5, minutes=30)))
    stored.ended_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=tz.utc)
    save(stored, ["queue_priority", "message", "started_at", "ended_at"])
    again = SE.objects.get(pk=run.pk)
    assert (again.queue_priority, again.message) == (3, "made lazily")
    assert again.started_at == moment and again.ended_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=tz.utc)


def test_rows_become_instances_that_behave_as_the_orm_s(api, sockshop):
    """Instances made from a prepared query's rows are Django's own: saved, refreshed and compared alike."""
    context = api.trigger()
    task = current_task(context)
    with transaction.atomic():
        found = locks.lock_task(task.triggered_id)
    assert found == task and not found._state.adding and found._state.db == "default"
    assert found.sequence_execution.project == sockshop
    found.message = "changed"
    found.save(update_fields=["message"])
    found.refresh_from_db()
    assert found.message == "changed" and TE.objects.get(pk=task.pk).message == "changed"


def test_a_lookup_that_transforms_its_argument_is_refused_not_run_with_the_placeholder(api, sockshop):
    api.trigger(service="carts")
    starting = Prepared(lambda prefix: SE.objects.filter(service__startswith=prefix), str)
    with pytest.raises(ValueError, match="use exact lookups only"):
        starting("car")


def test_every_prepared_query_of_the_hot_paths_reads_what_the_orm_reads(api, sockshop):
    from sequences.models import Event, Service
    from sequences.transitions import arrivals, commands, task_moves

    contexts = [api.trigger(service=service) for service in ("carts", "orders")]
    api.finish(current_task(contexts[0]), result="warning")
    for context in contexts:
        run = SE.objects.get(context=context, stage="dev")
        assert [fields(t) for t in task_moves.tasks_of(run.id)] == [
            fields(t) for t in TE.objects.filter(sequence_execution_id=run.id).order_by("index")]
        with transaction.atomic():
            assert [fields(r) for r in commands._runs_of("sockshop", context)] == [
                fields(r) for r in SE.objects.filter(project__name="sockshop", context=context).order_by("id")]
    assert commands._runs_of("sockshop", "no-such-context") == []
    for event in Event.objects.all():
        assert arrivals._seen(event.event_id, event.type) == [(event.outcome, event.context)]
    assert arrivals._seen(Event.objects.first().event_id, "sh.keptn.event.other.type") == []
    for service in Service.objects.all():
        found = arrivals._service("sockshop", service.name)
        assert [fields(s) for s in found] == [fields(service)]
        assert fields(found[0].project) == fields(sockshop)
    assert arrivals._service("sockshop", "no-such-service") == []
    assert arrivals._service("no-such-project", "carts") == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL (SQLite has one writer)")
@pytest.mark.django_db(transaction=True)  # two connections, each with its own transaction
def test_a_task_s_lock_waits_for_its_sequence_first_and_reads_the_task_at_its_newest(api, sockshop):
    context = api.trigger()
    task = current_task(context)
    seen = []

    def waiter():
        try:
            with transaction.atomic():
                seen.append(locks.lock_task(task.triggered_id).message)
        finally:
            connection.close()

    with transaction.atomic():  # as a control command: the sequence first
        SE.objects.select_for_update().get(pk=task.sequence_execution_id)
        thread = threading.Thread(target=waiter)
        thread.start()
        with connection.cursor() as cursor:  # until the other connection waits for a lock
            for _ in range(500):
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                               "AND datname = current_database()")
                if cursor.fetchone()[0]:
                    break
                thread.join(0.01)
            else:
                raise AssertionError("lock_task did not wait for the locked sequence execution")
            # It waits holding nothing of the task: the task is locked here without waiting, and changed.
            cursor.execute("SELECT id FROM sequences_taskexecution WHERE id = %s FOR NO KEY UPDATE NOWAIT",
                           [task.pk])
        TE.objects.filter(pk=task.pk).update(message="changed while it waited")
    thread.join()
    assert seen == ["changed while it waited"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL")
def test_the_hot_statements_are_prepared_once_per_connection_on_postgresql(api, sockshop):
    context = api.trigger()
    for _ in range(2):
        api.finish(current_task(context))
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s",
                       ['INSERT INTO "sequences_event" %'])
        inserts = cursor.fetchall()
    assert len(inserts) == 1  # one statement, prepared once, run for every event on this connection


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL")
def test_a_duplicate_event_is_still_answered_as_one_when_statements_are_prepared(api, sockshop):
    from sequences.models import Event

    body = {"specversion": "1.0", "id": "prepared-twice", "source": "test",
            "type": "sh.keptn.event.dev.delivery.triggered",
            "data": {"project": "sockshop", "stage": "dev", "service": "carts"}}
    assert api.post("/api/v1/event", body).status_code == 202
    again = api.post("/api/v1/event", body)  # its insert fails on the prepared statement: Django's IntegrityError
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    assert Event.objects.filter(event_id="prepared-twice").count() == 1
