"""The OpenAPI document tells the truth: schemathesis sends generated requests to every operation (a
bounded number each) and every answer must be a declared status, JSON, and valid against its declared
schema; no request may produce a 5xx."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.checks import not_a_server_error

from sequences.models import ApiToken

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@pytest.fixture
def token(admin_user, sockshop, ctl):
    """An admin's token, with sequences in the demo project for the operations to find."""
    ctl.trigger(tag="1")
    ctl.trigger(tag="2")
    # Requests go through the WSGI handler in this thread: keep it from closing the test's connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield ApiToken.issue(admin_user, "conformance")[1]
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_answer_is_declared_and_valid(case, token):
    case.call_and_validate(headers={"x-token": token}, checks=CHECKS)
