"""OpenTelemetry spans: one per sequence execution and one per task, when the OpenTelemetry SDK is configured.

Turned on by OpenTelemetry's own setting `OTEL_TRACES_EXPORTER` (`otlp`, with opentelemetry-exporter-otlp
installed and `OTEL_EXPORTER_OTLP_ENDPOINT` set, or `console`), with opentelemetry-sdk installed; without
them this module costs nothing. A span is written when its sequence or task ends (after the commit), from
the times Bosun stored, so every process (web or engine) can write it and none keeps spans in memory:

- the trace id is the context (`shkeptncontext`, a UUID, is 128 bits like a trace id), so every sequence
  of a delivery, across its stages, is one trace;
- a sequence's span id is derived from its execution id, and its tasks' spans name it as their parent.
"""

import hashlib
import logging
import os
import threading
import uuid

log = logging.getLogger("bosun.tracing")

_tracer = None
_ids = None
_lock = threading.Lock()


def _setup():
    """The tracer, built once from OTEL_TRACES_EXPORTER; None when tracing is off or the SDK is missing."""
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not exporter_name or exporter_name == "none":
        return None
    try:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        log.warning("OTEL_TRACES_EXPORTER is set but opentelemetry-sdk is not installed: no spans")
        return None
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    elif exporter_name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            log.warning("OTEL_TRACES_EXPORTER=otlp needs opentelemetry-exporter-otlp-proto-http: no spans")
            return None
        exporter = OTLPSpanExporter()
    else:
        log.warning("OTEL_TRACES_EXPORTER=%s is not one Bosun knows (otlp, console): no spans", exporter_name)
        return None
    return use(BatchSpanProcessor(exporter))


def use(processor):
    """Send Bosun's spans to this span processor (tests pass a SimpleSpanProcessor with an in-memory exporter)."""
    global _tracer, _ids
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class ChosenIds(RandomIdGenerator):
        """Span ids chosen by Bosun (derived from an execution id) where it asks for one."""

        wanted = threading.local()

        def generate_span_id(self) -> int:
            chosen = getattr(self.wanted, "span_id", None)
            if chosen:
                self.wanted.span_id = None
                return chosen
            return super().generate_span_id()

    _ids = ChosenIds()
    service = os.environ.get("OTEL_SERVICE_NAME") or "bosun"
    provider = TracerProvider(resource=Resource.create({"service.name": service}), id_generator=_ids)
    provider.add_span_processor(processor)
    _tracer = provider.get_tracer("bosun")
    return _tracer


_checked = False


def tracer():
    global _checked
    if not _checked:
        with _lock:
            if not _checked:
                _setup()
                _checked = True
    return _tracer


def _number(text: str, bits: int) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[: bits // 4], 16) or 1


def trace_id(context: str) -> int:
    try:
        return uuid.UUID(context).int or _number(context, 128)
    except ValueError:
        return _number(context, 128)


def sequence_span_id(execution) -> int:
    return _number(f"sequence:{execution.execution_id}", 64)


def _ns(moment) -> int | None:
    return int(moment.timestamp() * 1_000_000_000) if moment else None


def _parent(trace: int, span: int):
    from opentelemetry import trace as api
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    context = SpanContext(trace_id=trace, span_id=span, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return api.set_span_in_context(NonRecordingSpan(context))


def _write(name: str, parent, start, end, attributes: dict, failed: bool, span_id: int | None = None):
    from opentelemetry.trace import SpanKind, Status, StatusCode

    if span_id is not None:
        _ids.wanted.span_id = span_id
    span = _tracer.start_span(name, context=parent, kind=SpanKind.INTERNAL, start_time=_ns(start),
                              attributes={k: v for k, v in attributes.items() if v not in (None, "")})
    if failed:
        span.set_status(Status(StatusCode.ERROR, str(attributes.get("bosun.message") or "")[:500]))
    span.end(end_time=_ns(end))


def ended(kind: str, execution, task=None):
    """After commit: the span of a sequence or task that has just ended (a no-op when tracing is off)."""
    if tracer() is None:
        return
    try:
        common = {"bosun.project": execution.project.name, "bosun.stage": execution.stage,
                  "bosun.service": execution.service, "bosun.sequence": execution.name,
                  "bosun.context": execution.context}
        trace = trace_id(execution.context)
        if task is None:
            _write(f"{execution.stage}.{execution.name}", _parent(trace, _number(f"context:{execution.context}", 64)),
                   execution.triggered_at, execution.ended_at,
                   {**common, "bosun.state": execution.state, "bosun.result": execution.result,
                    "bosun.status": execution.status, "bosun.message": execution.message,
                    "bosun.started_at": execution.started_at.isoformat() if execution.started_at else None},
                   failed=execution.result == "fail", span_id=sequence_span_id(execution))
        else:
            _write(task.name, _parent(trace, sequence_span_id(execution)),
                   task.triggered_at or task.started_at or task.finished_at, task.finished_at,
                   {**common, "bosun.task": task.name, "bosun.triggered_id": task.triggered_id,
                    "bosun.state": task.state, "bosun.result": task.result, "bosun.status": task.status,
                    "bosun.message": task.message, "bosun.executors": ", ".join(sorted(task.executors or {}))},
                   failed=task.result == "fail")
    except Exception:  # tracing must never break what it watches
        log.exception("tracing: the span of %s could not be written", kind)
