"""Projects, their freeze windows and webhooks: changed here by who may manage projects."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from sequences import freeze_config
from sequences.admin.shared import DEFINE_JOBS, ManagedAdmin, ServiceInline
from sequences.models import FreezeWindow, Project
from sequences.notices import outbox as webhooks
from sequences.rules.durations import format_duration
from sequences.store.db import write_transaction


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
