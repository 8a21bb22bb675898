"""Failed logins at /accounts/login/ and /admin/login/ are counted; too many answer 429 (sequences/store/throttle.py)."""

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils.decorators import sync_and_async_middleware

from sequences.store import throttle

LOGIN_PATHS = (settings.LOGIN_URL, "/admin/login/")


def _refusal(request):
    """A 429 page when this login attempt's address (or user) failed too often, else None."""
    try:
        throttle.check_login(request, request.POST.get("username", "")[:150])
    except throttle.Throttled as exc:
        html = render_to_string("registration/throttled.html", {"message": exc.message}, request=request)
        response = HttpResponse(html, status=429)
        response["Retry-After"] = str(exc.retry_after)
        return response
    return None


@sync_and_async_middleware
def login_throttle(get_response):
    """Both sync and async, so requests that are not logins pass straight through under ASGI."""
    if iscoroutinefunction(get_response):
        async def middleware(request):
            if request.method == "POST" and request.path in LOGIN_PATHS:
                refused = await sync_to_async(_refusal)(request)
                if refused is not None:
                    return refused
            return await get_response(request)
    else:
        def middleware(request):
            if request.method == "POST" and request.path in LOGIN_PATHS:
                refused = _refusal(request)
                if refused is not None:
                    return refused
            return get_response(request)
    return middleware


@receiver(user_login_failed)
def _failed(sender, credentials, request=None, **_):
    if request is not None:
        throttle.login_failed(request, str(credentials.get("username", ""))[:150])


@receiver(user_logged_in)
def _succeeded(sender, request, user, **_):
    if request is not None:
        throttle.login_succeeded(request, user.get_username())
