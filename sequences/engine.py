"""The engine: fires timeouts, delayed tasks and the ends of freeze windows on time and mends half-done work. Safe to run several.

`manage.py run_engine` runs it alone; `manage.py up` runs it on a thread beside the web server, where
every committed change wakes it at once. Alone, it also looks again at least every `max_sleep` seconds,
since changes made by other processes cannot wake it.
"""

import logging
import threading

from django.db import close_old_connections
from django.utils import timezone

from sequences.notices import sending as delivering
from sequences.store.db import let_go_of_connection
from sequences.store.signals import context_changed
from sequences.transitions import holds, repair, timeouts

log = logging.getLogger("bosun.engine")


class Engine:
    def __init__(self, max_sleep: float = 1.0, repair_every: float = 30.0, settle: float = 0.25):
        self.max_sleep = max_sleep
        self.settle = settle
        self.repair_every = repair_every
        self.stopping = threading.Event()
        self.woken = threading.Event()
        self._last_repair = 0.0

    def wake(self, **_):
        self.woken.set()

    def stop(self, *_):
        self.stopping.set()
        self.woken.set()

    def step(self, now=None) -> bool:
        """Fire what is due and, now and then, mend; returns whether it did any work."""
        fired = mended = 0
        try:
            fired = timeouts.fire_due(now) + holds.fire_ended(now)
        except Exception:  # e.g. the database went away: the repairs below may still work
            log.exception("engine: firing timers failed")
        moment = (now or timezone.now()).timestamp()
        if moment - self._last_repair >= self.repair_every:
            self._last_repair = moment
            try:
                mended = repair.repair()
            except Exception:
                log.exception("engine: the repair sweep failed")
        if fired or mended:
            log.info("engine: %d timer(s) fired, %d repair(s)", fired, mended)
        return bool(fired or mended)

    def seconds_to_next(self) -> float:
        deadline = min((d for d in (timeouts.next_deadline(), holds.next_end()) if d is not None), default=None)
        if deadline is None:
            return self.max_sleep
        return max(0.0, min(self.max_sleep, (deadline - timezone.now()).total_seconds()))

    def run(self):
        context_changed.connect(self.wake, dispatch_uid=f"engine-{id(self)}")
        sender = delivering.Sender(max_sleep=min(self.max_sleep, 1.0))
        sender.start()
        log.info("engine: running")
        try:
            while not self.stopping.is_set():
                try:
                    if self.step():
                        continue
                    pause = self.seconds_to_next()
                except Exception:  # a database hiccup must not end the engine; say so and go on
                    log.exception("engine: step failed; trying again in a second")
                    pause = 1.0
                finally:
                    let_go_of_connection()  # a pooled connection is not kept through the wait
                if self.woken.wait(pause):
                    # Woken by a commit: let a burst of commits settle, then look once for all of them. A
                    # commit brings at most a new deadline (minutes away, as a rule), so a quarter second
                    # costs no timer its second of precision, and a busy intake at most 4 looks a second.
                    self.stopping.wait(self.settle)
                self.woken.clear()
        finally:
            sender.stop()
            context_changed.disconnect(dispatch_uid=f"engine-{id(self)}")
            close_old_connections()
            log.info("engine: stopped")


class EngineThread(threading.Thread):
    def __init__(self, engine: Engine):
        super().__init__(name="bosun-engine", daemon=True)
        self.engine = engine

    def run(self):
        self.engine.run()

    def stop(self):
        self.engine.stop()
        self.join(timeout=10)


def start_in_thread(max_sleep: float = 30.0) -> EngineThread:
    """The engine beside the web server: in-process changes wake it, so it may sleep long when idle."""
    thread = EngineThread(Engine(max_sleep=max_sleep))
    thread.start()
    return thread
