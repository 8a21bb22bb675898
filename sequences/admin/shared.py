"""What every page of the admin shares: how fields are shown, read-only and managed pages, and the
confirmation page of an action."""

import json

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from sequences.models import SequenceExecution, Service, TaskExecution
from sequences.transitions.commands import Actor


def pretty(field: str, label: str | None = None):
    """A read-only JSON field, indented, in a scrolling box."""
    def show(obj):
        value = getattr(obj, field)
        return format_html('<pre class="bosun-json" style="max-height:28rem;overflow:auto;margin:0">{}</pre>',
                           json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))
    show.short_description = label or field.replace("_", " ")
    show.__name__ = f"{field}_pretty"
    return show


def read_only_fields(model, *json_fields) -> list:
    """Every field of the model, read-only, with its JSON fields pretty-printed."""
    return [pretty(f.name) if f.name in json_fields else f.name for f in model._meta.fields]


def short(value: str):
    """A long id in a list: its first 8 characters, the whole of it on hover."""
    return format_html('<span title="{}">{}</span>', value, value[:8])


def lane_of(run: SequenceExecution) -> str:
    return f"{run.stage}/{run.service}"


def bridge_url(run: SequenceExecution, task: TaskExecution | None = None) -> str:
    url = reverse("sequence", args=[run.project.name, run.context])
    return f"{url}#task-{task.triggered_id}" if task else url


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record Bosun keeps: viewed here, never edited or deleted by hand (no Save, no Delete)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fields(self, request, obj=None):
        return list(self.get_readonly_fields(request, obj))  # in their order, JSON ones pretty-printed


def confirm(modeladmin, request, queryset, *, title: str, explain: str, submit: str, danger: bool = True):
    """The intermediate page of a destructive action: what it affects, and a reason for the audit trail.
    Returns the reason once confirmed, or the page to show."""
    if request.POST.get("confirmed") == "yes":
        return (request.POST.get("reason") or "").strip() or "from Django admin"
    return TemplateResponse(request, "admin/sequences/confirm_action.html", {
        **modeladmin.admin_site.each_context(request),
        "title": title, "explain": explain, "submit": submit, "danger": danger, "objects": list(queryset[:200]),
        "count": queryset.count(), "action": request.POST.get("action"), "opts": modeladmin.model._meta,
        "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
    })


def on_each(modeladmin, request, rows, command, done) -> None:
    """After a confirmed action: `command(row, actor)` for each selected row, through the same functions as the
    API; the person is told what became of each (`done(body)` of a success, else the refusal's message)."""
    who = Actor(request.user.get_username(), "admin")
    for row in rows:
        outcome = command(row, who)
        ok = outcome.code < 300
        detail = done(outcome.body) if ok else outcome.body.get("message")
        modeladmin.message_user(request, f"{row}: {detail}", messages.SUCCESS if ok else messages.WARNING)


class ServiceInline(admin.TabularInline):
    model = Service
    extra = 0
    readonly_fields = ["created_at"]


MANAGE = "sequences.manage_projects"
DEFINE_JOBS = "sequences.define_jobs"


class ManagedAdmin(admin.ModelAdmin):
    """What the API lets only project managers do (manage_projects) is theirs here too, on top of the model
    permissions Django admin asks for."""

    def has_add_permission(self, request, *args):
        return super().has_add_permission(request, *args) and request.user.has_perm(MANAGE)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and request.user.has_perm(MANAGE)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and request.user.has_perm(MANAGE)
