"""Counters every process shares, to tell the others that what they keep in memory is stale.

A process that changes something others cache (tokens and permissions, webhooks) bumps its counter after
the commit; a process compares the counter with the one its copy was made under before trusting the copy.
They live in Django's cache: Redis when REDIS_URL is set (every process shares it), this process's memory
otherwise (the embedded mode has one process). When the cache cannot be read, nothing cached is trusted.
"""

import logging

from django.core.cache import cache
from django.db import transaction

log = logging.getLogger("bosun.cache")


class Generation:
    def __init__(self, name: str):
        self.key = f"bosun-generation:{name}"

    def current(self) -> int | None:
        """The shared counter (0 before the first change), or None when the cache cannot be read."""
        try:
            return int(cache.get(self.key, 0))
        except Exception:
            log.exception("could not read %s; nothing cached under it is trusted", self.key)
            return None

    def bump_after_commit(self):
        """Count one change, once the transaction that made it commits (at once outside a transaction), so
        no process re-reads the old state under the new count."""
        transaction.on_commit(self._bump)

    def _bump(self):
        try:
            if not cache.add(self.key, 1, timeout=None):
                try:
                    cache.incr(self.key)
                except ValueError:  # gone between add and incr (evicted): start again
                    cache.add(self.key, 1, timeout=None)
        except Exception:
            log.exception("could not count a change in %s; other processes see it when their copies expire",
                          self.key)
