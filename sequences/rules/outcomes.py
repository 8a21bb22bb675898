"""What a person is shown of a sequence execution and of a context, decided once; the API, the Bridge, the
CLI and the SDK read it from here (the API carries it to the clients as `outcome`).

- A run's words: its state as a person reads it (an icon, a label, a CSS class and a key for filters). A
  finished run reads by its result; a failed run that a later run of its context in the same stage and for
  the same service put right (a rollback that passed) reads "Failed (rolled back)": the rollback does not
  make the failure a success.
- A context's words: while anything of it runs or waits, the words of the run shown (the last one still
  active); once everything has ended, the worst of its runs: timed out, aborted, failed (rolled back or
  not), superseded, succeeded with warnings, succeeded.
"""

from sequences.rules.machine import Run as SE

# key -> (icon, label, css). Labels never rely on colour alone.
WORDS = {
    "waiting": ("◷", "Waiting", "waiting"),
    "triggered": ("•", "Triggered", "waiting"),
    "running": ("▶", "Running", "running"),
    "paused": ("‖", "Paused", "paused"),
    "approval": ("⚑", "Waiting for approval", "paused"),
    "aborting": ("■", "Aborting", "warn"),
    "succeeded": ("✔", "Succeeded", "ok"),
    "warning": ("⚠", "Succeeded with warnings", "warn"),
    "failed": ("✖", "Failed", "bad"),
    "aborted": ("⊘", "Aborted", "muted"),
    "timedout": ("◔", "Timed out", "bad"),
    "superseded": ("⤼", "Superseded", "muted"),
}
STATE_KEYS = {SE.TRIGGERED: "triggered", SE.STARTED: "running", SE.PAUSED: "paused",
              SE.WAITING_FOR_APPROVAL: "approval", SE.ABORTING: "aborting", SE.ABORTED: "aborted",
              SE.TIMED_OUT: "timedout", SE.SUPERSEDED: "superseded", SE.WAITING: "waiting"}
RESULT_KEYS = {"pass": "succeeded", "warning": "warning"}
# The worst first: what a context that has ended reads as.
WORST_FIRST = ("timedout", "aborted", "failed", "superseded", "warning", "succeeded")


def _words(key: str, label: str | None = None) -> dict:
    icon, default, css = WORDS[key]
    # "key" filters the Bridge's lists; the filter's own name for "triggered" is "waiting"
    return {"icon": icon, "label": label or default, "css": css, "key": "waiting" if key == "triggered" else key}


def _key(run: SE) -> str:
    if run.state == SE.FINISHED:
        return RESULT_KEYS.get(run.result, "failed")
    if run.state == SE.PAUSED and run.state_before_pause == SE.WAITING:
        return "paused"
    return STATE_KEYS[run.state]


def rolled_back(run: SE, context_runs: list[SE]) -> bool:
    """Whether a failed run was put right by a later run of its context in its stage, for its service, that
    passed (e.g. a rollback triggered on the delivery's failure)."""
    if _key(run) != "failed":
        return False
    return any(other.id > run.id and other.stage == run.stage and other.service == run.service
               and other.name != run.name and other.state == SE.FINISHED and other.result in RESULT_KEYS
               for other in context_runs)


def run_words(run: SE, queue: dict | None = None, context_runs: list[SE] = ()) -> dict:
    """A run's state as a person reads it; `queue` gives a waiting run its place, `context_runs` (its
    context's runs) tell whether a failure was rolled back."""
    key = _key(run)
    if key == "paused" and run.frozen_by:
        return _words("paused", f"Held (freeze window '{run.frozen_by}')")
    if key == "paused" and run.state_before_pause == SE.WAITING:
        position = queue.get("position") if queue else None
        return _words("paused", f"Paused (waiting #{position})" if position else "Paused (waiting)")
    if key == "waiting":
        position = queue.get("position") if queue else None
        frozen = " (frozen)" if queue and queue.get("frozen") else ""
        label = f"Waiting #{position}{frozen}" if position else f"Waiting{frozen}" if frozen else None
        return _words("waiting", label)
    if key == "failed" and rolled_back(run, list(context_runs)):
        return _words("failed", "Failed (rolled back)")
    return _words(key)


def shown(runs: list[SE]) -> SE:
    """The run a context is shown by: the last one still running or waiting, else its last one."""
    active = [r for r in runs if not r.is_terminal]
    return (active or runs)[-1]


def context_words(runs: list[SE], queues: dict | None = None) -> dict:
    """A context as a person reads it (runs in order of their id)."""
    queues = queues or {}
    current = shown(runs)
    if not current.is_terminal:
        return run_words(current, queues.get(current.id), runs)
    words = [run_words(r, None, runs) for r in runs]
    worst = min(words, key=lambda w: WORST_FIRST.index(w["key"]) if w["key"] in WORST_FIRST else len(WORST_FIRST))
    if worst["key"] == "failed" and any(w["label"] == "Failed" for w in words):
        return _words("failed")  # one failure nothing put right outweighs one that was rolled back
    return worst


FILTER_KEYS = ("running", "waiting", "paused", "approval", "aborting", "succeeded", "warning", "failed", "aborted",
               "timedout", "superseded")


def stored_as(key: str) -> tuple[list[dict], dict]:
    """What a run whose own key is `key` has stored: (field lookups, any of which matches; lookups it must
    not match). A context reads as `key` only if one of its runs does: the Bridge's filter looks for these
    first, then keeps the contexts whose words (context_words) say `key`."""
    if key in ("succeeded", "warning"):
        return [{"state": SE.FINISHED, "result": r} for r, k in RESULT_KEYS.items() if k == key], {}
    if key == "failed":
        return [{"state": SE.FINISHED}], {"result__in": list(RESULT_KEYS)}
    states = [s for s, k in STATE_KEYS.items() if k == key or (key == "waiting" and k == "triggered")]
    return [{"state__in": states}], {}


def as_json(words: dict) -> dict:
    """The words as the API carries them: `key` (for scripts) and `label` (for people)."""
    return {"key": words["key"], "label": words["label"]}
