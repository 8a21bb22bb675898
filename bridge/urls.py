from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from sequences.api import api

from . import views


def api_not_found(request, rest=""):
    return JsonResponse({"code": 404, "message": f"There is no API endpoint at {request.path}; "
                                                 "see /api/docs for the list."}, status=404)


admin.site.site_header = "Bosun administration"
admin.site.site_title = "Bosun admin"
admin.site.index_title = "Projects, sequences and tokens"

urlpatterns = [
    path("", RedirectView.as_view(url="/bridge/", permanent=False)),
    path("bridge/", views.home, name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    re_path(r"^api/(?P<rest>.*)$", api_not_found),
]
