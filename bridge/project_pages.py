"""Projects managed in the Bridge: create one from a shipyard (pasted or uploaded), add and remove services,
edit the shipyard and the job definitions. The same checks as the API (sequences/configuration.py); what is
wrong is shown beside the field it is about, with what was typed, and nothing is stored."""

import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from sequences import configuration
from sequences.api.auth import DEFINE_JOBS, MANAGE
from sequences.configuration import ProjectError
from sequences.models import Project

from .pages import page_context

MAX_UPLOAD = 256 * 1024  # as much as the API takes in a shipyard


def _may(request) -> dict:
    return {"manage": request.user.has_perm(MANAGE), "define_jobs": request.user.has_perm(DEFINE_JOBS)}


def _text(request, field: str, upload: str | None = None) -> tuple[str, str]:
    """A text field, or the file uploaded in its place; (text, what is wrong with the file)."""
    file = request.FILES.get(upload) if upload else None
    if file is None:
        return request.POST.get(field, ""), ""
    if file.size > MAX_UPLOAD:
        return "", f"{file.name} is {file.size // 1024} KiB; a shipyard may be at most {MAX_UPLOAD // 1024} KiB."
    try:
        return file.read().decode("utf-8"), ""
    except UnicodeDecodeError:
        return "", f"{file.name} is not UTF-8 text: upload the shipyard's YAML file."


def _service_names(text: str) -> list[str]:
    return [name for name in re.split(r"[\s,]+", text.strip()) if name]


def _checked(errors: dict, field: str, check, *args):
    """Run one of configuration's checks; its ProjectError's words go beside `field`."""
    try:
        return check(*args)
    except ProjectError as exc:
        errors[field] = exc.message
        return None


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def project_new(request):
    may = _may(request)
    if not may["manage"]:
        messages.error(request, "You may not create projects; ask an admin for the manage-projects permission.")
        return redirect("home")
    values, errors = {"name": "", "shipyard": "", "services": "", "jobs": ""}, {}
    if request.method == "POST":
        shipyard, upload_error = _text(request, "shipyard", "shipyard_file")
        values = {"name": request.POST.get("name", "").strip(), "shipyard": shipyard,
                  "services": request.POST.get("services", ""), "jobs": request.POST.get("jobs", "")}
        if values["jobs"].strip() and not may["define_jobs"]:
            errors["jobs"] = "You may not define jobs (they run commands on executor hosts); ask an admin."
        _checked(errors, "name", configuration.check_name, values["name"])
        if upload_error:
            errors["shipyard"] = upload_error
        else:
            _checked(errors, "shipyard", configuration.validated_shipyard, shipyard)
        for service in _service_names(values["services"]):
            if _checked(errors, "services", configuration.check_name, service, "service") is None:
                break
        _checked(errors, "jobs", configuration.validated_jobs, values["jobs"])
        if not errors:
            project = _checked(errors, "name", configuration.create_project, values["name"], shipyard,
                               _service_names(values["services"]), values["jobs"])
            if project is not None:
                messages.success(request, f"Project '{project.name}' is created.")
                return redirect("project-settings", project.name)
    return render(request, "bridge/project_new.html", page_context(request, may=may, values=values, errors=errors),
                  status=400 if errors else 200)


def _settings_page(request, project: Project, errors=None, values=None, status=200):
    may = _may(request)
    shown = {"shipyard": project.shipyard, "jobs": project.jobs, "service": "", **(values or {})}
    return render(request, "bridge/project_settings.html", page_context(
        request, project, tab="settings", may=may, values=shown, errors=errors or {},
        services=[s.name for s in project.services.order_by("name")], warnings=configuration.warnings(project)),
        status=status)


@login_required
@require_safe
def project_settings(request, project):
    return _settings_page(request, get_object_or_404(Project, name=project))


def _refused(request, project: Project, what: str):
    messages.error(request, f"You may not {what}; ask an admin.")
    return redirect("project-settings", project.name)


def _change(request, project: Project, field: str, value: str, change, done: str, anchor: str, error: str = ""):
    """Apply one change of the settings page: what is wrong goes beside `field` with `value` kept (400), else
    the page again with `done` said, at the section it was made in."""
    errors = {field: error} if error else {}
    if not errors:
        _checked(errors, field, change, project, value)
    if errors:
        return _settings_page(request, project, errors, {field: value}, status=400)
    messages.success(request, done)
    return redirect(reverse("project-settings", args=[project.name]) + f"#{anchor}")


@login_required
@require_POST
def save_shipyard(request, project):
    found = get_object_or_404(Project, name=project)
    if not _may(request)["manage"]:
        return _refused(request, found, "change the shipyard")
    text, upload_error = _text(request, "shipyard", "shipyard_file")
    return _change(request, found, "shipyard", text, configuration.update_shipyard,
                   "The shipyard is saved: sequences triggered from now on follow it.", "shipyard", upload_error)


@login_required
@require_POST
def save_jobs(request, project):
    found = get_object_or_404(Project, name=project)
    if not _may(request)["define_jobs"]:
        return _refused(request, found, "define jobs (they run commands on executor hosts)")
    return _change(request, found, "jobs", request.POST.get("jobs", ""), configuration.update_jobs,
                   "The job definitions are saved: tasks triggered from now on run them.", "jobs")


@login_required
@require_POST
def add_service(request, project):
    found = get_object_or_404(Project, name=project)
    if not _may(request)["manage"]:
        return _refused(request, found, "add services")
    name = request.POST.get("service", "").strip()
    return _change(request, found, "service", name, configuration.create_service,
                   f"Service '{name}' is added: it exists in every stage.", "services")


@login_required
@require_POST
def remove_service(request, project, service):
    found = get_object_or_404(Project, name=project)
    if not _may(request)["manage"]:
        return _refused(request, found, "remove services")
    try:
        configuration.delete_service(found, service)
    except ProjectError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Service '{service}' is removed.")
    return redirect(reverse("project-settings", args=[found.name]) + "#services")


@login_required
@require_POST
def delete_project(request, project):
    found = get_object_or_404(Project, name=project)
    if not _may(request)["manage"]:
        return _refused(request, found, "delete projects")
    if request.POST.get("confirm", "").strip() != found.name:
        return _settings_page(request, found, {"confirm": f"Type the project's name, {found.name}, to delete it."},
                              status=400)
    configuration.delete_project(found)
    messages.success(request, f"Project '{found.name}' and everything in it is deleted.")
    return redirect("home")
