"""One way into a writing transaction, one way out to after-commit side effects, and one way for a long-lived
thread to let go of its connection."""

import logging
import threading
from contextlib import contextmanager

from django.db import close_old_connections, connection, transaction

from sequences.store.signals import context_changed

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


# What the database says when it cannot write for want of space (SQLite, PostgreSQL, the OS).
_FULL = ("database or disk is full", "no space left on device", "could not extend file", "disk full")


def storage_trouble(exc: BaseException) -> tuple[int, str] | None:
    """(status, message) when `exc` says the database cannot be written or reached, else None. Its transaction
    was rolled back: nothing of the request was applied."""
    from django.db import DatabaseError, InterfaceError, OperationalError

    if not isinstance(exc, DatabaseError):
        return None
    text = str(exc).lower()
    if any(words in text for words in _FULL):
        return 507, ("Bosun's storage is full, so nothing of this request was applied; free disk space "
                     "(or raise the database's quota) and send it again.")
    if isinstance(exc, (OperationalError, InterfaceError)):
        return 503, ("Bosun's database is unavailable right now, so nothing of this request was applied; "
                     "send it again in a moment.")
    return None


def let_go_of_connection():
    """Give this thread's database connection back (to the pool, on PostgreSQL) before a long-lived thread
    waits, so that waiting threads hold none; SQLite's one persistent connection stays open. Never raises:
    a broken connection is dropped, and the next query opens a new one."""
    try:
        close_old_connections()
    except Exception:
        logging.getLogger("bosun").exception("could not close a database connection; it is dropped")
