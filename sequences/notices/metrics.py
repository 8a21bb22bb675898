"""Observability: a structured log line per transition, and Prometheus metrics (served at /metrics).

Transitions are logged and counted after their transaction commits, so a rolled-back change is never
reported. Histograms and counters live in each process (a web process counts what its requests did, an
engine what its timers did); gauges of sequences by state are read from the database at scrape time.
"""

import json
import logging
import time

from django.db import transaction
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from sequences.notices import tracing

log = logging.getLogger("bosun.transitions")
SEQUENCE_ENDS = {"sequence.finished", "sequence.aborted", "sequence.timedOut", "sequence.superseded"}
REGISTRY = CollectorRegistry(auto_describe=True)

TRANSITIONS = Counter("bosun_transitions", "Transitions of sequences and tasks, by kind", ["kind"], registry=REGISTRY)
LANE_WAIT = Histogram("bosun_lane_wait_seconds", "How long a sequence waited for its lane before it started",
                      buckets=(0.01, 0.1, 1, 10, 60, 300, 900, 3600, 4 * 3600, 24 * 3600), registry=REGISTRY)
HANDOFF = Histogram("bosun_handoff_seconds", "From a task's .finished arriving to the next task's .triggered stored",
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5), registry=REGISTRY)
TIMEOUTS = Counter("bosun_timeouts_fired", "Timeouts the engine fired, by kind", ["kind"], registry=REGISTRY)
ENGINE_LAG = Gauge("bosun_engine_lag_seconds", "How late the engine fired its last timer after its deadline",
                   registry=REGISTRY)
HEARTBEATS = Counter("bosun_executor_heartbeats", "Heartbeats received from executors", registry=REGISTRY)


class SequencesByState:
    """bosun_sequences{project, state}: read from the database when Prometheus scrapes."""

    def describe(self):
        return []

    def collect(self):
        from django.db.models import Count

        from sequences.models import SequenceExecution

        family = GaugeMetricFamily("bosun_sequences", "Sequence executions by project and state",
                                   labels=["project", "state"])
        rows = SequenceExecution.objects.values("project__name", "state").annotate(n=Count("id")).order_by()
        for row in rows:
            family.add_metric([row["project__name"], row["state"]], row["n"])
        yield family


REGISTRY.register(SequencesByState())


def transition(kind: str, execution, task=None, **fields):
    """After commit: one log line (JSON with LOG_FORMAT=json) and the counters of this transition."""
    record = {"kind": kind, "project": execution.project.name, "stage": execution.stage,
              "service": execution.service, "sequence": execution.name, "context": execution.context,
              "state": execution.state}
    if task is not None:
        record.update(task=task.name, triggeredId=task.triggered_id, taskState=task.state)
    record.update(fields)
    waited = None
    if kind == "sequence.started" and execution.started_at and execution.triggered_at:
        waited = max(0.0, (execution.started_at - execution.triggered_at).total_seconds())

    ended = kind in SEQUENCE_ENDS if task is None else kind not in ("task.triggered", "task.started")

    def report():
        TRANSITIONS.labels(kind).inc()
        if ended:
            tracing.ended(kind, execution, task)
        if waited is not None:
            LANE_WAIT.observe(waited)
        log.info("%s %s/%s/%s %s %s", kind, record["project"], record["stage"], record["service"],
                 record["sequence"], record["context"], extra={"transition": record})
    transaction.on_commit(report)


def handoff(started: float):
    """A task's .finished that triggered the next task: observe how long it took (perf_counter seconds)."""
    took = time.perf_counter() - started
    transaction.on_commit(lambda: HANDOFF.observe(took))


def timeout_fired(kind: str, lag_seconds: float):
    TIMEOUTS.labels(kind).inc()
    ENGINE_LAG.set(max(0.0, lag_seconds))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and a transition's fields when it has them."""

    converter = time.gmtime

    def format(self, record):
        line = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
                "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if hasattr(record, "transition"):
            line.update(record.transition)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)
