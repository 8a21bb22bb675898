"""Django admin: a real tool for looking around. States are read-only here; control comes as actions
that ask for confirmation and a reason on a page of their own, and call the same functions as the API."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from sequences import freeze_config
from sequences.models import (ApiToken, ControlAction, Event, FreezeWindow, Integration, IntegrationLog, Project,
                              SequenceExecution, Service, TaskExecution, TaskLog)
from sequences.notices import outbox as webhooks
from sequences.rules import machine
from sequences.rules.shipyard import format_duration
from sequences.store.db import write_transaction
from sequences.transitions import commands as control
from sequences.transitions import holds, reopen


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


@admin.register(Project)
class ProjectAdmin(ManagedAdmin):
    list_display = ["name", "created_at", "updated_at"]
    search_fields = ["name"]
    inlines = [ServiceInline]

    def get_readonly_fields(self, request, obj=None):
        # Jobs are commands executors run: only those who may define jobs may change them (as in the API).
        extra = [] if request.user.has_perm(DEFINE_JOBS) else ["jobs"]
        return ["created_at", "updated_at", *extra]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        original_clean = form.clean

        def clean(form_self):
            from django.core.exceptions import ValidationError

            from sequences.configuration import ProjectError, validated_jobs, validated_shipyard

            data = original_clean(form_self)
            if data.get("shipyard"):
                try:
                    data["shipyard"] = validated_shipyard(data["shipyard"])
                except ProjectError as exc:
                    raise ValidationError({"shipyard": exc.message}) from None
            if "jobs" in form_self.fields:
                try:
                    data["jobs"] = validated_jobs(data.get("jobs") or "")
                except ProjectError as exc:
                    raise ValidationError({"jobs": exc.message}) from None
            return data

        form.clean = clean
        return form


class FreezeWindowForm(forms.ModelForm):
    """A window's fields as people type them (a duration such as 2h or 2d12h), checked by the same rules as
    the API's (sequences/rules/windows.py); each error is shown beside its field."""

    duration_text = forms.CharField(label="Duration", required=False,
                                    help_text="A recurring window's length: 2h, 90m, 2d12h")
    FIELDS = {"name": "name", "reason": "reason", "stages": "stages", "services": "services", "start": "starts_at",
              "end": "ends_at", "cron": "cron", "duration": "duration_text", "timeZone": "time_zone",
              "running": "running"}

    class Meta:
        model = FreezeWindow
        fields = ["project", "name", "reason", "stages", "services", "starts_at", "ends_at", "cron",
                  "duration_text", "time_zone", "running"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.cron:
            self.initial["duration_text"] = format_duration(self.instance.duration)

    def clean(self):
        data = super().clean()
        project = data.get("project")
        if project is None or self.errors:
            return data
        fields = {api: data.get(field) for api, field in self.FIELDS.items()}
        try:
            self.rule = freeze_config.checked(project, {k: v for k, v in fields.items() if v not in (None, "", [])})
        except freeze_config.WindowFieldError as exc:
            raise ValidationError({self.FIELDS.get(exc.field, "name"): exc.message.split(": ", 1)[-1]}) from None
        return data


@admin.register(FreezeWindow)
class FreezeWindowAdmin(ManagedAdmin):
    form = FreezeWindowForm
    list_display = ["name", "project", "scope", "when", "running", "on_now"]
    list_filter = ["project", "running"]
    search_fields = ["name", "reason"]
    readonly_fields = ["created_by", "created_at", "next_end"]

    @admin.display(description="stages · services")
    def scope(self, window):
        return f"{', '.join(window.stages) or 'every stage'} · {', '.join(window.services) or 'every service'}"

    @admin.display(description="when")
    def when(self, window):
        shown = freeze_config.window_json(window.rule())
        if window.cron:
            return f"every '{window.cron}' for {shown['duration']} ({window.time_zone})"
        return f"{shown['start']} – {shown['end']}"

    @admin.display(description="on now", boolean=True)
    def on_now(self, window):
        return window.rule().on_at(timezone.now()) is not None

    def save_model(self, request, obj, form, change):
        freeze_config.apply(obj, form.rule)
        if not change:
            obj.created_by = request.user.get_username()
        freeze_config.save_window(obj, actor=request.user.get_username(), source="admin")

    def delete_model(self, request, obj):
        freeze_config.delete_window(obj.project, obj.name, actor=request.user.get_username(), source="admin")

    def delete_queryset(self, request, queryset):
        for window in queryset.select_related("project"):
            self.delete_model(request, window)


class TaskExecutionInline(admin.TabularInline):
    model = TaskExecution
    extra = 0
    can_delete = False
    fields = ["index", "name", "state", "result", "status", "triggered_at", "started_at", "finished_at", "finished_by"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SequenceExecution)
class SequenceExecutionAdmin(ReadOnlyAdmin):
    list_display = ["context_id", "project", "lane", "name", "state", "result", "triggered_at", "on_the_bridge"]
    list_display_links = ["context_id"]
    list_filter = ["state", "result", "project", "service", "stage", "name", "queue_policy"]
    search_fields = ["context", "service", "triggered_id"]
    list_select_related = ["project"]
    date_hierarchy = "triggered_at"
    readonly_fields = ["on_the_bridge", "allowed_now"] + read_only_fields(SequenceExecution, "input_data", "tasks")
    inlines = [TaskExecutionInline]
    actions = ["pause", "resume", "abort", "abort_force", "abort_kill", "rerun", "let_through"]

    @admin.display(description="context", ordering="context")
    def context_id(self, run):
        return short(run.context)

    @admin.display(description="stage/service", ordering="stage")
    def lane(self, run):
        return lane_of(run)

    @admin.display(description="Bridge")
    def on_the_bridge(self, run):
        return format_html('<a href="{}" title="Open this sequence on the Bridge">Open&nbsp;→</a>', bridge_url(run))

    @admin.display(description="What may be done now")
    def allowed_now(self, run):
        """The commands the state machine allows in its state (the actions below that will apply)."""
        return ", ".join(machine.COMMANDS[name].label for name in run.commands()) or "nothing: it has ended"

    def _control(self, request, queryset, state, mode=None, reason="from Django admin"):
        """Send the command to each selected sequence's stage, through the same function as the API."""
        who = control.Actor(request.user.get_username(), "admin")
        for run in queryset.select_related("project"):
            outcome = control.control_sequence(run.project.name, run.context, state, actor=who, stage=run.stage,
                                               mode=mode, reason=reason)
            level = messages.SUCCESS if outcome.code == 200 else messages.WARNING
            detail = outcome.body.get("state") if outcome.code == 200 else outcome.body.get("message")
            self.message_user(request, f"{run}: {state}{f' ({mode})' if mode else ''} -> {detail}", level)

    def _confirmed(self, request, queryset, state, mode, title, explain, submit, danger=True):
        answer = confirm(self, request, queryset, title=title, explain=explain, submit=submit, danger=danger)
        if isinstance(answer, TemplateResponse):
            return answer
        self._control(request, queryset, state, mode, answer)
        return None

    @admin.action(description="Pause the selected sequences", permissions=["operate"])
    def pause(self, request, queryset):
        return self._confirmed(request, queryset, "pause", None, "Pause these sequences?",
                               "The running task goes on; the next one waits for a resume.", "Pause", danger=False)

    @admin.action(description="Resume the selected sequences", permissions=["operate"])
    def resume(self, request, queryset):
        return self._confirmed(request, queryset, "resume", None, "Resume these sequences?",
                               "What the pause held back is triggered at once.", "Resume", danger=False)

    @admin.action(description="Abort the selected sequences (graceful)…", permissions=["operate"])
    def abort(self, request, queryset):
        return self._confirmed(request, queryset, "abort", "graceful", "Abort these sequences gracefully?",
                               "No further task is triggered; a running task is asked to cancel and holds the lane "
                               "until it ends.", "Abort")

    @admin.action(description="Abort the selected sequences (force: release the lane now)…", permissions=["operate"])
    def abort_force(self, request, queryset):
        return self._confirmed(request, queryset, "abort", "force", "Force-abort these sequences?",
                               "They are aborted now and their lanes released now; running tasks are abandoned.",
                               "Force abort")

    @admin.action(description="Abort the selected sequences (kill the running task)…", permissions=["operate"])
    def abort_kill(self, request, queryset):
        return self._confirmed(request, queryset, "abort", "kill", "Abort these sequences and kill their tasks?",
                               "As force, and executors terminate the running tasks' processes (SIGTERM, then "
                               "SIGKILL).", "Abort and kill")

    @admin.action(description="Re-run the selected ended sequences in their stages…", permissions=["operate"])
    def rerun(self, request, queryset):
        answer = confirm(self, request, queryset, title="Re-run these sequences?",
                         explain="Each runs again in its stage and context with the same input; it waits in its "
                                 "lane if another sequence holds it. One that has not ended is left alone.",
                         submit="Re-run", danger=False)
        if isinstance(answer, TemplateResponse):
            return answer
        who = control.Actor(request.user.get_username(), "admin")
        for run in queryset.select_related("project"):
            outcome = control.retrigger_sequence(run.project.name, run.context, actor=who, stage=run.stage,
                                                 sequence=run.name, reason=answer)
            ok = outcome.code < 300
            detail = f"re-run, {outcome.body['state']}" if ok else outcome.body.get("message")
            self.message_user(request, f"{run}: {detail}", messages.SUCCESS if ok else messages.WARNING)
        return None

    @admin.action(description="Let the selected sequences through their freeze windows…",
                  permissions=["pass_freezes"])
    def let_through(self, request, queryset):
        answer = confirm(self, request, queryset, title="Let these sequences through the freeze?",
                         explain="A sequence held under a freeze window goes on now; one waiting in a frozen lane "
                                 "goes first in its lane and starts as soon as the lane is free. Later windows do "
                                 "not hold them. One that is not frozen is left alone.", submit="Let through")
        if isinstance(answer, TemplateResponse):
            return answer
        who = control.Actor(request.user.get_username(), "admin")
        for run in queryset.select_related("project"):
            outcome = holds.let_through_command(run.project.name, run.context, actor=who, stage=run.stage,
                                                reason=answer)
            ok = outcome.code < 300
            detail = f"let through, {outcome.body['state']}" if ok else outcome.body.get("message")
            self.message_user(request, f"{run}: {detail}", messages.SUCCESS if ok else messages.WARNING)
        return None

    def has_operate_permission(self, request):
        return request.user.has_perm("sequences.operate_sequences")

    def has_pass_freezes_permission(self, request):
        return request.user.has_perm("sequences.pass_freezes")


class TaskLogInline(admin.StackedInline):
    model = TaskLog
    can_delete = False
    fields = ["total_bytes", "cut_bytes", "updated_at", "text"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(TaskExecution)
class TaskExecutionAdmin(ReadOnlyAdmin):
    list_display = ["name", "task_id", "lane", "state", "result", "triggered_at", "on_the_bridge"]
    list_filter = ["state", "result", "sequence_execution__project", "sequence_execution__service",
                   "sequence_execution__stage", "name"]
    search_fields = ["triggered_id", "sequence_execution__context", "claimed_by"]
    list_select_related = ["sequence_execution", "sequence_execution__project"]
    readonly_fields = ["on_the_bridge"] + read_only_fields(TaskExecution, "properties", "executors",
                                                           "finished_data", "facts")
    inlines = [TaskLogInline]
    actions = ["kill", "retry"]

    @admin.display(description="triggered id", ordering="triggered_id")
    def task_id(self, task):
        return short(task.triggered_id)

    @admin.display(description="stage/service", ordering="sequence_execution__stage")
    def lane(self, task):
        return lane_of(task.sequence_execution)

    @admin.display(description="Bridge")
    def on_the_bridge(self, task):
        return format_html('<a href="{}" title="Open this task on the Bridge">Open&nbsp;→</a>',
                           bridge_url(task.sequence_execution, task))

    @admin.action(description="Kill the selected tasks…", permissions=["operate"])
    def kill(self, request, queryset):
        answer = confirm(self, request, queryset, title="Kill these tasks?", submit="Kill",
                         explain="Executors terminate their processes (SIGTERM, then SIGKILL); their sequences end "
                                 "failed.")
        if isinstance(answer, TemplateResponse):
            return answer
        who = control.Actor(request.user.get_username(), "admin")
        for task in queryset:
            outcome = control.kill_task(task.triggered_id, answer, actor=who)
            level = messages.SUCCESS if outcome.code == 200 else messages.WARNING
            self.message_user(request, f"{task}: {outcome.body.get('state') or outcome.body.get('message')}", level)
        return None

    @admin.action(description="Retry from the selected tasks (where their sequence failed)…", permissions=["operate"])
    def retry(self, request, queryset):
        answer = confirm(self, request, queryset, title="Retry these tasks and go on from there?", submit="Retry",
                         danger=False, explain="A new attempt of each task is triggered and its sequence goes on "
                                               "from it. Only the task an ended sequence failed or timed out at "
                                               "is retried; the others are left alone.")
        if isinstance(answer, TemplateResponse):
            return answer
        who = control.Actor(request.user.get_username(), "admin")
        for task in queryset:
            outcome = reopen.retry_task(task.triggered_id, answer, actor=who)
            ok = outcome.code == 200
            detail = f"retried, the sequence is {outcome.body['sequenceState']}" if ok else outcome.body.get("message")
            self.message_user(request, f"{task}: {detail}", messages.SUCCESS if ok else messages.WARNING)
        return None

    def has_operate_permission(self, request):
        return request.user.has_perm("sequences.operate_sequences")


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["id", "type", "source", "project", "stage", "service", "context", "outcome", "time"]
    list_filter = ["outcome", "project", "service", "stage", "type"]
    search_fields = ["event_id", "context", "triggered_id", "type"]
    readonly_fields = read_only_fields(Event, "payload")


@admin.register(ControlAction)
class ControlActionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "command", "project", "context", "actor", "source", "state_before", "state_after"]
    list_filter = ["command", "source", "project"]
    search_fields = ["context", "actor", "reason", "idempotency_key"]
    readonly_fields = read_only_fields(ControlAction, "response")


@admin.register(Integration)
class IntegrationAdmin(ReadOnlyAdmin):
    list_display = ["name", "hostname", "integration_id", "registered_at", "last_seen"]
    search_fields = ["name", "integration_id"]
    readonly_fields = read_only_fields(Integration, "metadata", "subscriptions")

    def has_delete_permission(self, request, obj=None):
        return request.user.has_perm("sequences.delete_integration")  # an integration that is gone for good


@admin.register(IntegrationLog)
class IntegrationLogAdmin(ReadOnlyAdmin):
    list_display = ["time", "integration_id", "task", "context", "message"]
    search_fields = ["integration_id", "context", "triggered_id", "message"]
    readonly_fields = read_only_fields(IntegrationLog)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "prefix"]
    list_select_related = ["user"]
    readonly_fields = ["user", "name", "prefix", "created_at", "last_used_at"]

    def has_add_permission(self, request):
        return False  # tokens are shown once when made: manage.py create_token or the Bridge's token page


class WebhookForm(forms.ModelForm):
    class Meta:
        model = webhooks.Webhook
        fields = ["project", "url", "events", "active", "secret"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "secret" in self.fields:  # only when a webhook is added: a secret is never shown again
            self.fields["secret"].required = False
            self.fields["secret"].help_text = "Signs each delivery (HMAC-SHA256). Left empty, Bosun makes one."

    def clean_events(self):
        try:
            return webhooks._patterns(self.cleaned_data.get("events"))
        except webhooks.WebhookError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_url(self):
        try:
            return webhooks._url(self.cleaned_data.get("url"))
        except webhooks.WebhookError as exc:
            raise forms.ValidationError(exc.message) from None


@admin.register(webhooks.Webhook)
class WebhookAdmin(ManagedAdmin):
    form = WebhookForm
    list_display = ["url", "project", "events", "active", "created_by", "created_at"]
    list_filter = ["active", "project"]
    search_fields = ["url", "project__name"]
    list_select_related = ["project"]
    readonly_fields = ["secret_kept", "created_by", "created_at", "recent_deliveries"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["project", "url", "events", "active", "secret"]
        return ["project", "url", "events", "active", "secret_kept", "created_by", "created_at",
                "recent_deliveries"]

    @admin.display(description="Secret")
    def secret_kept(self, obj):
        return "Kept, and never shown again: it was shown once, when the webhook was made."

    @admin.display(description="Recent deliveries")
    def recent_deliveries(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        recent = list(obj.deliveries.select_related("event").order_by("-id")[:10])
        if not recent:
            return "None yet: the next event this webhook wants is sent within a second."
        row = '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>'
        rows = format_html_join("", row, (
            (reverse("admin:sequences_delivery_change", args=[d.id]), d.event.type, d.state, d.attempts,
             d.last_status or "-", d.last_error or "-") for d in recent))
        every = reverse("admin:sequences_delivery_changelist") + f"?webhook__id__exact={obj.pk}"
        return format_html('<table><thead><tr><th>event</th><th>state</th><th>attempts</th><th>status</th>'
                           '<th>last error</th></tr></thead><tbody>{}</tbody></table>'
                           '<p><a href="{}">Every delivery of this webhook ({} in all)</a></p>',
                           rows, every, obj.deliveries.count())

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user.get_username()
            obj.secret = obj.secret or webhooks.new_secret()
        with write_transaction():
            super().save_model(request, obj, form, change)


@admin.register(webhooks.Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "webhook", "event", "state", "attempts", "last_status", "last_duration_ms",
                    "next_attempt_at", "delivered_at"]
    list_filter = ["state", "webhook__project", "webhook"]
    search_fields = ["event__event_id", "event__type", "webhook__url", "last_error"]
    list_select_related = ["webhook__project", "event"]
    readonly_fields = read_only_fields(webhooks.Delivery)
    actions = ["send_again"]

    def has_manage_permission(self, request):
        return request.user.has_perm(MANAGE)  # as the API's retry

    @admin.action(description="Send the selected deliveries again now", permissions=["manage"])
    def send_again(self, request, queryset):
        count = webhooks.retry_now(queryset)
        self.message_user(request, f"{count} deliveries will be sent again at once "
                                   "(delivered ones are left alone).", messages.SUCCESS)
