"""Signals sequences/ sends after a commit; it never imports the Bridge, the Bridge listens."""

from django.dispatch import Signal

# kwargs: project (name), context, and optionally stage, service, kind
context_changed = Signal()

# kwargs: project (name), context, triggered_id: a task's job wrote more output
task_log_changed = Signal()

# kwargs: project (name): its job definitions changed (executors read them again)
jobs_changed = Signal()
