"""When the database cannot write (a full disk) or cannot be reached, a page says so with 507 or 503, not a
bare 500: nothing of the request was applied, and the person knows to try again."""

import logging

from django.http import HttpResponse

from sequences.store.db import storage_trouble

log = logging.getLogger("bosun.bridge")


class StorageTrouble:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        trouble = storage_trouble(exception)
        if trouble is None:
            return None
        log.error("%s %s: %s", request.method, request.path, exception)
        response = HttpResponse(trouble[1] + "\n", status=trouble[0], content_type="text/plain; charset=utf-8")
        response["Retry-After"] = "30"
        return response
