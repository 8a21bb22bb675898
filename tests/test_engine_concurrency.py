"""Several engines at once: each timeout fires once (skip-locked claims on PostgreSQL, one writer on SQLite)."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from sequences.models import ControlAction
from sequences.models import SequenceExecution as SE
from sequences.transitions import timeouts

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_engines_racing_fire_each_timeout_once(ops, ctl):
    contexts = [ctl.trigger(project="ops", service="carts", tag="1")]
    contexts += [ctl.trigger(project="ops", sequence="remediation", tag="r")]
    later = timezone.now() + timedelta(hours=1)
    counts, errors = [], []
    barrier = threading.Barrier(3)

    def engine():
        try:
            barrier.wait()
            counts.append(timeouts.fire_due(later))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=engine) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(counts) == 2
    assert ControlAction.objects.filter(command="timeout").count() == 2
    assert set(SE.objects.filter(context__in=contexts).values_list("state", flat=True)) == {SE.TIMED_OUT}
