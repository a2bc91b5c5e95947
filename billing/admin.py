from django.contrib import admin

from alexia.admin_scoping import OrganizationScopedAdmin

from .models import UsageRecord


@admin.register(UsageRecord)
class UsageRecordAdmin(OrganizationScopedAdmin):
    """The usage ledger is append-only: rows are only looked at, never added, changed or deleted here."""

    read_only = True
    list_display = ["occurred_at", "meter", "quantity", "channel_kind", "channel_id", "organization"]
    list_filter = ["meter", "channel_kind", ("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["idempotency_key", "meter"]
    date_hierarchy = "occurred_at"

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
