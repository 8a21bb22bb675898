"""The records: events, the audit trail, integrations and their errors, API tokens, webhook deliveries."""

from django.contrib import admin, messages

from sequences.admin.shared import MANAGE, ReadOnlyAdmin, read_only_fields
from sequences.models import ApiToken, ControlAction, Event, Integration, IntegrationLog
from sequences.notices import outbox as webhooks


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
