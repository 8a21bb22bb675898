"""Sequence and task executions: read-only, with the actions people control them by."""

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.html import format_html

from sequences.admin.shared import ReadOnlyAdmin, bridge_url, confirm, lane_of, on_each, read_only_fields, short
from sequences.models import SequenceExecution, TaskExecution, TaskLog
from sequences.rules import machine
from sequences.transitions import commands as control
from sequences.transitions import holds, reopen


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


def _command(state: str, mode: str | None, description: str, title: str, explain: str, submit: str,
             danger: bool = True):
    """An action that sends one control command to each selected sequence, once confirmed with a reason on a
    page of its own."""

    @admin.action(description=description, permissions=["operate"])
    def action(modeladmin, request, queryset):
        return modeladmin._confirmed(request, queryset, state, mode, title, explain, submit, danger)

    return action


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

    pause = _command("pause", None, "Pause the selected sequences", "Pause these sequences?",
                     "The running task goes on; the next one waits for a resume.", "Pause", danger=False)
    resume = _command("resume", None, "Resume the selected sequences", "Resume these sequences?",
                      "What the pause held back is triggered at once.", "Resume", danger=False)
    abort = _command("abort", "graceful", "Abort the selected sequences (graceful)…",
                     "Abort these sequences gracefully?", "No further task is triggered; a running task is asked to "
                     "cancel and holds the lane until it ends.", "Abort")
    abort_force = _command("abort", "force", "Abort the selected sequences (force: release the lane now)…",
                           "Force-abort these sequences?", "They are aborted now and their lanes released now; "
                           "running tasks are abandoned.", "Force abort")
    abort_kill = _command("abort", "kill", "Abort the selected sequences (kill the running task)…",
                          "Abort these sequences and kill their tasks?", "As force, and executors terminate the "
                          "running tasks' processes (SIGTERM, then SIGKILL).", "Abort and kill")

    @admin.action(description="Re-run the selected ended sequences in their stages…", permissions=["operate"])
    def rerun(self, request, queryset):
        answer = confirm(self, request, queryset, title="Re-run these sequences?",
                         explain="Each runs again in its stage and context with the same input; it waits in its "
                                 "lane if another sequence holds it. One that has not ended is left alone.",
                         submit="Re-run", danger=False)
        return answer if isinstance(answer, TemplateResponse) else on_each(
            self, request, queryset.select_related("project"), lambda run, who: control.retrigger_sequence(
                run.project.name, run.context, actor=who, stage=run.stage, sequence=run.name, reason=answer),
            lambda body: f"re-run, {body['state']}")

    @admin.action(description="Let the selected sequences through their freeze windows…",
                  permissions=["pass_freezes"])
    def let_through(self, request, queryset):
        answer = confirm(self, request, queryset, title="Let these sequences through the freeze?",
                         explain="A sequence held under a freeze window goes on now; one waiting in a frozen lane "
                                 "goes first in its lane and starts as soon as the lane is free. Later windows do "
                                 "not hold them. One that is not frozen is left alone.", submit="Let through")
        return answer if isinstance(answer, TemplateResponse) else on_each(
            self, request, queryset.select_related("project"), lambda run, who: holds.let_through_command(
                run.project.name, run.context, actor=who, stage=run.stage, reason=answer),
            lambda body: f"let through, {body['state']}")

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
        return answer if isinstance(answer, TemplateResponse) else on_each(
            self, request, queryset, lambda task, who: control.kill_task(task.triggered_id, answer, actor=who),
            lambda body: body.get("state"))

    @admin.action(description="Retry from the selected tasks (where their sequence failed)…", permissions=["operate"])
    def retry(self, request, queryset):
        answer = confirm(self, request, queryset, title="Retry these tasks and go on from there?", submit="Retry",
                         danger=False, explain="A new attempt of each task is triggered and its sequence goes on "
                                               "from it. Only the task an ended sequence failed or timed out at "
                                               "is retried; the others are left alone.")
        return answer if isinstance(answer, TemplateResponse) else on_each(
            self, request, queryset, lambda task, who: reopen.retry_task(task.triggered_id, answer, actor=who),
            lambda body: f"retried, the sequence is {body['sequenceState']}")

    def has_operate_permission(self, request):
        return request.user.has_perm("sequences.operate_sequences")
