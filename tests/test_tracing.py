"""OpenTelemetry: with the SDK configured, each sequence and each task that ends becomes a span, in one trace per
context, the tasks under their sequence, timed from what Bosun stored."""

import uuid

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from sequences.notices import tracing
from tests.helpers import current_task, run_of


@pytest.fixture
def spans(monkeypatch):
    exporter = InMemorySpanExporter()
    monkeypatch.setattr(tracing, "_checked", True)
    tracing.use(SimpleSpanProcessor(exporter))
    yield exporter
    monkeypatch.setattr(tracing, "_tracer", None)


def test_a_delivery_is_one_trace_with_a_span_per_task_under_its_sequence(api, sockshop, spans,
                                                                         django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        context = api.trigger(tag="1")
        for _ in range(4):
            task = current_task(context)
            api.task_event(task, "started", source="helm")
            api.finish(task, source="helm")
    finished = {span.name: span for span in spans.get_finished_spans()}
    assert {"deployment", "test", "evaluation", "release", "dev.delivery"} <= set(finished)
    sequence = finished["dev.delivery"]
    run = run_of(context)
    assert sequence.context.trace_id == uuid.UUID(context).int  # the context is the trace
    assert sequence.context.span_id == tracing.sequence_span_id(run)
    assert sequence.attributes["bosun.result"] == "pass" and sequence.attributes["bosun.service"] == "carts"
    assert sequence.start_time == int(run.triggered_at.timestamp() * 1e9)
    assert sequence.end_time == int(run.ended_at.timestamp() * 1e9)
    for name in ("deployment", "test", "evaluation", "release"):
        span = finished[name]
        assert span.context.trace_id == sequence.context.trace_id
        assert span.parent.span_id == sequence.context.span_id
        assert span.attributes["bosun.executors"] == "helm"
        assert sequence.start_time <= span.start_time <= span.end_time <= sequence.end_time
    assert all(span.status.status_code != StatusCode.ERROR for span in finished.values())


def test_a_failed_task_and_its_sequence_are_marked_as_errors(api, sockshop, spans, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        context = api.trigger(tag="1")
        api.finish(current_task(context), result="fail", message="helm upgrade failed")
    by_name = {span.name: span for span in spans.get_finished_spans()}
    assert by_name["deployment"].status.status_code == StatusCode.ERROR
    assert by_name["dev.delivery"].status.status_code == StatusCode.ERROR
    assert by_name["dev.delivery"].attributes["bosun.state"] == "finished"


def test_no_spans_without_an_exporter(api, sockshop, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    monkeypatch.setattr(tracing, "_checked", False)
    monkeypatch.setattr(tracing, "_tracer", None)
    with django_capture_on_commit_callbacks(execute=True):
        api.finish(current_task(api.trigger(tag="1")))
    assert tracing.tracer() is None


def test_a_console_exporter_is_built_from_opentelemetrys_own_setting(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setattr(tracing, "_checked", False)
    monkeypatch.setattr(tracing, "_tracer", None)
    assert tracing.tracer() is not None
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "carrier-pigeon")
    monkeypatch.setattr(tracing, "_checked", False)
    monkeypatch.setattr(tracing, "_tracer", None)
    assert tracing.tracer() is None
