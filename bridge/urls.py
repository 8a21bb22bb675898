from django.contrib import admin
from django.templatetags.static import static
from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView

from sequences.api import api

from . import logviewer, project_pages, views


@csrf_exempt  # nothing is applied: a POST to a path that does not exist is a 404, never a CSRF page
def api_not_found(request, rest=""):
    return JsonResponse({"code": 404, "message": f"There is no API endpoint at {request.path}; "
                                                 "see /api/docs for the list."}, status=404)


admin.site.site_header = "Bosun administration"
admin.site.site_title = "Bosun admin"
admin.site.index_title = "Projects, sequences and tokens"

P = "bridge/project/<str:project>"
S = f"{P}/sequence/<str:context>"

urlpatterns = [
    path("", RedirectView.as_view(url="/bridge/", permanent=False)),
    path("favicon.ico", RedirectView.as_view(url=static("bridge/favicon.svg"), permanent=True)),
    path("bridge/", views.home, name="home"),
    path("metrics", views.metrics, name="metrics"),
    path("bridge/tokens/", views.tokens, name="tokens"),
    path("bridge/tokens/<int:token_id>/revoke", views.revoke_token, name="revoke-token"),
    path("bridge/projects/new", project_pages.project_new, name="project-new"),
    path(f"{P}/", views.environment, name="environment"),
    path(f"{P}/settings", project_pages.project_settings, name="project-settings"),
    path(f"{P}/settings/shipyard", project_pages.save_shipyard, name="project-shipyard"),
    path(f"{P}/settings/jobs", project_pages.save_jobs, name="project-jobs"),
    path(f"{P}/settings/service", project_pages.add_service, name="project-add-service"),
    path(f"{P}/settings/service/<str:service>/remove", project_pages.remove_service, name="project-remove-service"),
    path(f"{P}/settings/delete", project_pages.delete_project, name="project-delete"),
    path(f"{P}/trigger", views.trigger, name="trigger"),
    path(f"{P}/stage/<str:stage>/service/<str:service>/deployments", views.deployment_history, name="deployments"),
    path(f"{P}/sequence/", views.sequence_list, name="sequences"),
    path(S, views.sequence_detail, name="sequence"),
    path(f"{S}/stage/<str:stage>", views.sequence_detail, name="sequence-stage"),
    path(f"{S}/event/<str:event_id>", views.sequence_detail, name="sequence-event"),
    path(f"{S}/control", views.sequence_control, name="sequence-control"),
    path(f"{S}/rerun", views.sequence_rerun, name="sequence-rerun"),
    path(f"{S}/let-through", views.sequence_let_through, name="sequence-let-through"),
    path(f"{S}/task/<str:triggered_id>/log", views.task_log, name="task-log"),
    path(f"{S}/task/<str:triggered_id>/log/view", logviewer.task_log_view, name="task-log-view"),
    path(f"{S}/task/<str:triggered_id>/<str:command>", views.task_command, name="task-command"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    re_path(r"^api/(?P<rest>.*)$", api_not_found),
]
