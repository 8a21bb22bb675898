"""One way into a writing transaction, and one way out to after-commit side effects."""

import threading
from contextlib import contextmanager

from django.db import connection, transaction

from .signals import context_changed

# SQLite has one writer at a time; writers that collide back off by sleeping (p99 > 1 s). One lock per
# process serialises them here instead, so the database lock is never contended within a process.
_sqlite_writer = threading.RLock()


@contextmanager
def write_transaction():
    if connection.vendor == "sqlite":
        with _sqlite_writer, transaction.atomic():
            yield
    else:
        with transaction.atomic():
            yield


def announce(project: str, context: str, **details):
    """After commit, tell listeners (the Bridge, the engine) that a context of a project changed."""
    transaction.on_commit(
        lambda: context_changed.send(sender=None, project=project, context=context, **details)
    )
