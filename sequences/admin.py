"""Django admin: a real tool for looking around. States are read-only here; control comes as actions."""

from django.contrib import admin, messages

from . import control

from .models import ApiToken, ControlAction, Event, Project, SequenceExecution, Service, TaskExecution, TaskLog


class ServiceInline(admin.TabularInline):
    model = Service
    extra = 0
    readonly_fields = ["created_at"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at", "updated_at"]
    search_fields = ["name"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [ServiceInline]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        original_clean = form.clean

        def clean(form_self):
            from django.core.exceptions import ValidationError

            from .projects import ProjectError, validated_jobs, validated_shipyard

            data = original_clean(form_self)
            if data.get("shipyard"):
                try:
                    data["shipyard"] = validated_shipyard(data["shipyard"])
                except ProjectError as exc:
                    raise ValidationError({"shipyard": exc.message}) from None
            try:
                data["jobs"] = validated_jobs(data.get("jobs") or "")
            except ProjectError as exc:
                raise ValidationError({"jobs": exc.message}) from None
            return data

        form.clean = clean
        return form


class TaskExecutionInline(admin.TabularInline):
    model = TaskExecution
    extra = 0
    can_delete = False
    fields = ["index", "name", "state", "result", "status", "triggered_at", "started_at", "finished_at", "finished_by"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(SequenceExecution)
class SequenceExecutionAdmin(admin.ModelAdmin):
    list_display = ["context", "project", "stage", "service", "name", "state", "result", "triggered_at"]
    list_filter = ["state", "result", "project", "stage", "name"]
    search_fields = ["context", "service", "triggered_id"]
    list_select_related = ["project"]
    date_hierarchy = "triggered_at"
    readonly_fields = [f.name for f in SequenceExecution._meta.fields]
    inlines = [TaskExecutionInline]
    actions = ["pause", "resume", "abort", "abort_force", "abort_kill"]

    def _control(self, request, queryset, state, mode=None):
        """Send the command to each selected sequence's stage, through the same function as the API."""
        who = control.Actor(request.user.get_username(), "admin")
        for run in queryset.select_related("project"):
            outcome = control.control_sequence(run.project.name, run.context, state, actor=who, stage=run.stage,
                                               mode=mode, reason="from Django admin")
            level = messages.SUCCESS if outcome.code == 200 else messages.WARNING
            detail = outcome.body.get("state") if outcome.code == 200 else outcome.body.get("message")
            self.message_user(request, f"{run}: {state}{f' ({mode})' if mode else ''} -> {detail}", level)

    @admin.action(description="Pause the selected sequences", permissions=["operate"])
    def pause(self, request, queryset):
        self._control(request, queryset, "pause")

    @admin.action(description="Resume the selected sequences", permissions=["operate"])
    def resume(self, request, queryset):
        self._control(request, queryset, "resume")

    @admin.action(description="Abort the selected sequences (graceful)", permissions=["operate"])
    def abort(self, request, queryset):
        self._control(request, queryset, "abort", "graceful")

    @admin.action(description="Abort the selected sequences (force: release the lane now)", permissions=["operate"])
    def abort_force(self, request, queryset):
        self._control(request, queryset, "abort", "force")

    @admin.action(description="Abort the selected sequences (kill the running task)", permissions=["operate"])
    def abort_kill(self, request, queryset):
        self._control(request, queryset, "abort", "kill")

    def has_operate_permission(self, request):
        return request.user.has_perm("sequences.operate_sequences")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.method in ("GET", "HEAD") and super().has_view_permission(request, obj)


class TaskLogInline(admin.StackedInline):
    model = TaskLog
    can_delete = False
    fields = ["total_bytes", "cut_bytes", "updated_at", "text"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(TaskExecution)
class TaskExecutionAdmin(admin.ModelAdmin):
    list_display = ["name", "triggered_id", "state", "result", "status", "claimed_by", "triggered_at", "finished_at"]
    list_filter = ["state", "result", "name"]
    search_fields = ["triggered_id", "sequence_execution__context", "claimed_by"]
    list_select_related = ["sequence_execution"]
    readonly_fields = [f.name for f in TaskExecution._meta.fields]
    inlines = [TaskLogInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.method in ("GET", "HEAD") and super().has_view_permission(request, obj)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["id", "type", "source", "context", "outcome", "time"]
    list_filter = ["outcome", "project", "type"]
    search_fields = ["event_id", "context", "triggered_id", "type"]
    readonly_fields = [f.name for f in Event._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.method in ("GET", "HEAD") and super().has_view_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ControlAction)
class ControlActionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "command", "project", "context", "actor", "source", "state_before", "state_after"]
    list_filter = ["command", "source", "project"]
    search_fields = ["context", "actor", "reason", "idempotency_key"]
    readonly_fields = [f.name for f in ControlAction._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.method in ("GET", "HEAD") and super().has_view_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "prefix"]
    list_select_related = ["user"]
    readonly_fields = ["user", "name", "prefix", "created_at", "last_used_at"]

    def has_add_permission(self, request):
        return False  # tokens are shown once when made: manage.py create_token or the Bridge's token page
