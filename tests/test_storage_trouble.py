"""A database that cannot write (a full disk) gets a 507 that says so, and nothing of the request is applied."""

import json
import uuid

import pytest
from django.db import connection

from sequences.models import Event, SequenceExecution
from bridge.asgi import django_asgi_app
from bridge.intake import EventIntake
from tests.test_intake_path import asgi_post


def close_this_thread_s_connection():
    from django.db import connection as this_thread_s

    this_thread_s.close()

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's page limit makes its disk full")


@pytest.fixture
def full_disk(db):
    """The database may grow no more, as on a full disk: SQLite answers SQLITE_FULL to the next write that
    needs a new page."""
    with connection.cursor() as cursor:
        pages = cursor.execute("PRAGMA page_count").fetchone()[0]
        cursor.execute(f"PRAGMA max_page_count = {pages}")
    yield
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA max_page_count = 1073741823")


def big_trigger():
    return {"type": "sh.keptn.event.dev.delivery.triggered", "source": "test", "id": str(uuid.uuid4()),
            "data": {"project": "sockshop", "stage": "dev", "service": "carts", "padding": "x" * 60_000}}


def test_a_full_disk_answers_507_with_the_cause_and_applies_nothing(api, sockshop, full_disk):
    before = (Event.objects.count(), SequenceExecution.objects.count())
    answer = api.post("/api/v1/event", big_trigger())
    assert answer.status_code == 507
    assert answer.json() == {"code": 507, "message": (
        "Bosun's storage is full, so nothing of this request was applied; free disk space (or raise the "
        "database's quota) and send it again.")}
    assert (Event.objects.count(), SequenceExecution.objects.count()) == before


@pytest.mark.django_db(transaction=True)
def test_the_fast_way_in_says_the_same(operator_user, sockshop):
    from sequences.models import ApiToken

    token = ApiToken.issue(operator_user, "t")[1]
    with connection.cursor() as cursor:
        pages = cursor.execute("PRAGMA page_count").fetchone()[0]
    from django.db.backends.signals import connection_created

    def limit(sender, connection, **_):
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA max_page_count = {pages}")

    intake = EventIntake(django_asgi_app)  # its own database thread, whose connection gets the limit
    connection_created.connect(limit)
    try:
        response, _ = asgi_post(json.dumps(big_trigger()), {"x-token": token, "Content-Type": "application/json"},
                                app=intake)
    finally:
        connection_created.disconnect(limit)
        intake.threads.submit(close_this_thread_s_connection).result()
        intake.threads.shutdown()
    assert response.status_code == 507
    assert response.json()["message"].startswith("Bosun's storage is full")
