"""WhiteNoise for the static files only, so that every other request stays async end to end.

WhiteNoise's middleware is sync-only: in the chain, it would move every request to a thread and back to
the event loop (two thread hops before the view's own). Here only paths under STATIC_URL go to it.
"""

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        self.prefix = settings.STATIC_URL if settings.STATIC_URL.startswith("/") else "/" + settings.STATIC_URL
        self.whitenoise = WhiteNoiseMiddleware(async_to_sync(get_response) if self.is_async else get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        return self.whitenoise(request)

    async def __acall__(self, request):
        if request.path_info.startswith(self.prefix):
            return await sync_to_async(self.whitenoise)(request)
        return await self.get_response(request)
