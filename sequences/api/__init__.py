"""Bosun's REST API (django-ninja): Keptn-compatible paths plus Bosun's own, under /api/."""

import logging
import re

from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from sequences.api.auth import BearerToken, XToken
from sequences.api.control import router as control_router
from sequences.api.evaluations import router as evaluations_router
from sequences.api.events import router as events_router
from sequences.api.executions import router as executions_router
from sequences.api.freeze import router as freeze_router
from sequences.api.keptn import router as keptn_router
from sequences.api.logs import router as logs_router
from sequences.api.projects import router as projects_router
from sequences.api.schemas import RESPONSES_KEY
from sequences.api.tasks import router as tasks_router
from sequences.api.uniform import router as uniform_router
from sequences.api.webhooks import router as webhooks_router
from sequences.store import throttle
from sequences.store.db import storage_trouble


class BosunAPI(NinjaAPI):
    def get_openapi_schema(self, **kwargs):
        """The declared answer schemas (sequences/api/schemas.py) replace ninja's free-form ones."""
        schema = super().get_openapi_schema(**kwargs)
        for operations in schema["paths"].values():
            for operation in operations.values():
                if RESPONSES_KEY in operation:
                    operation["responses"] = operation.pop(RESPONSES_KEY)
        return schema


api = BosunAPI(
    title="Bosun API",
    version="1",
    description=(
        "Bosun's control plane API. It speaks Keptn's formats: CloudEvents in, sequence executions out. "
        "Authenticate with an API token in the `x-token` header (or `Authorization: Bearer <token>`): "
        "click **Authorize** and paste the token `manage.py up` printed, or one from `manage.py create_token`."
    ),
    auth=[XToken(), BearerToken()],
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
)


def error(request, code: int, message: str):
    return api.create_response(request, {"code": code, "message": message}, status=code)


@api.exception_handler(throttle.Throttled)
def on_throttled(request, exc):
    response = error(request, 429, exc.message)
    response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(AuthenticationError)
def on_unauthenticated(request, exc):
    if request.headers.get("x-token") or request.headers.get("authorization"):
        throttle.token_failed(request)  # a token was given and none was good
    return error(request, 401, "Missing or invalid API token: send it in the x-token header "
                               "or as 'Authorization: Bearer <token>'.")


@api.exception_handler(HttpError)
def on_http_error(request, exc):
    message = exc.message
    if exc.status_code == 400 and message.startswith("Cannot parse request body"):  # django-ninja's words
        message = _unreadable(request.body)
    return error(request, exc.status_code, message)


def _unreadable(body: bytes) -> str:
    """Why a request body could not be read, in words a client can act on."""
    import json

    try:
        json.loads(body)
    except RecursionError:
        return "The request body nests JSON too deeply to be read."
    except UnicodeDecodeError:
        return "The request body is not UTF-8 text; send JSON."
    except ValueError as exc:
        where = f": line {exc.lineno}, column {exc.colno}" if hasattr(exc, "lineno") else ""
        return f"The request body is not valid JSON ({getattr(exc, 'msg', exc)}{where}); send a JSON object."
    return "The request body could not be read as JSON; send a JSON object."


@api.exception_handler(Http404)
def on_not_found(request, exc):
    return error(request, 404, str(exc) or "Not found.")


FRIENDLY = {  # what a bad value of these parameters means, in words
    "pageSize": "pageSize must be between 1 and 100",
    "nextPageKey": "nextPageKey is not one this API gave out (use the nextPageKey of the previous page)",
}


def _problem(item: dict) -> str:
    where = ".".join(str(part) for part in item.get("loc", ()) if part not in ("body", "payload", "query", "path"))
    message = str(item.get("msg"))
    if where in FRIENDLY:
        return FRIENDLY[where]
    if not where and item.get("type") == "missing":
        return "the request body is empty: send a JSON object"
    if item.get("type") == "literal_error":
        options = re.findall(r"'([^']*)'", str((item.get("ctx") or {}).get("expected", "")))
        listed = f"one of {', '.join(options)}" if len(options) > 3 else " or ".join(
            [", ".join(options[:-1]), options[-1]] if len(options) > 1 else options)
        message = f"must be {listed}, not {item.get('input')!r}"
        return f"{where} {message}"
    return f"{where}: {message}" if where else message


@api.exception_handler(ValidationError)
def on_invalid(request, exc):
    return error(request, 400, "Invalid request: " + "; ".join(_problem(item) for item in exc.errors))


@api.exception_handler(RecursionError)
def on_too_deep(request, exc):
    return error(request, 400, "The request body nests JSON too deeply to be read.")


@api.exception_handler(Exception)
def on_bug(request, exc):
    trouble = storage_trouble(exc)
    if trouble is not None:  # not a bug: the database cannot write (a full disk) or cannot be reached
        logging.getLogger("bosun.api").error("%s %s: %s", request.method, request.path, exc)
        response = error(request, *trouble)
        response["Retry-After"] = "30"
        return response
    # A bug, not bad input: keep the answer JSON, and the traceback in the log.
    logging.getLogger("bosun.api").exception("%s %s failed", request.method, request.path)
    return error(request, 500, "Bosun failed to handle this request; the details are in its log.")


api.add_router("/v1", events_router)
api.add_router("", keptn_router)
api.add_router("/controlPlane/v1", executions_router)
api.add_router("/controlPlane/v1", projects_router)
api.add_router("/controlPlane/v1", control_router)
api.add_router("/controlPlane/v1", tasks_router)
api.add_router("/controlPlane/v1", uniform_router)
api.add_router("/controlPlane/v1", webhooks_router)
api.add_router("/controlPlane/v1", evaluations_router)
api.add_router("/controlPlane/v1", logs_router)
api.add_router("/controlPlane/v1", freeze_router)
