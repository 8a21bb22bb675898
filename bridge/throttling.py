"""Failed logins at /accounts/login/ and /admin/login/ are counted; too many answer 429 (sequences/throttle.py)."""

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.http import HttpResponse
from django.template.loader import render_to_string

from sequences import throttle

LOGIN_PATHS = (settings.LOGIN_URL, "/admin/login/")


class LoginThrottleMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "POST" and request.path in LOGIN_PATHS:
            try:
                throttle.check_login(request, request.POST.get("username", "")[:150])
            except throttle.Throttled as exc:
                html = render_to_string("registration/throttled.html", {"message": exc.message}, request=request)
                response = HttpResponse(html, status=429)
                response["Retry-After"] = str(exc.retry_after)
                return response
        return self.get_response(request)


@receiver(user_login_failed)
def _failed(sender, credentials, request=None, **_):
    if request is not None:
        throttle.login_failed(request, str(credentials.get("username", ""))[:150])


@receiver(user_logged_in)
def _succeeded(sender, request, user, **_):
    if request is not None:
        throttle.login_succeeded(request, user.get_username())
