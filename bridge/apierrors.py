"""Every answer under /api/ is JSON, as Keptn's clients decode it: an error Django or django-ninja would
answer with a page or plain text (405 for a known path and a wrong method, a 403 from a CSRF check, a 503
when the database is away) is answered as Keptn's models.Error, `{"code", "message"}`, its status and
headers (Allow, Retry-After) kept."""

import json

from django.http import HttpResponse

API = "/api/"


class JsonErrors:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (not request.path.startswith(API) or response.status_code < 400 or response.streaming
                or response.get("Content-Type", "").startswith("application/json")):
            return response
        return as_json(request, response)


def as_json(request, response) -> HttpResponse:
    code = response.status_code
    allow = ", ".join(sorted(m.strip() for m in response.get("Allow", "").split(",") if m.strip()))
    if code == 405:
        message = f"{request.method} is not allowed on {request.path}; it answers {allow or 'other methods'}."
    else:
        text = response.content.decode("utf-8", "replace").strip()
        plain = response.get("Content-Type", "").startswith("text/plain") and text
        message = text[:500] if plain else f"{response.reason_phrase or 'Error'} ({request.method} {request.path})."
    answer = HttpResponse(json.dumps({"code": code, "message": message}), status=code,
                          content_type="application/json")
    if allow:
        answer["Allow"] = allow
    for header in ("Retry-After", "WWW-Authenticate"):
        if header in response:
            answer[header] = response[header]
    return answer
