"""Inbox admin: contacts (with identities), conversations and messages (read-mostly), labels, replies.

Conversations and messages change through inbox services (assignment, sending, status), so here they
are for looking things up and for deletion; agents work in the inbox UI.
"""

from django.contrib import admin
from django.db import models
from django.urls import reverse
from django.utils.html import format_html

from alexia.admin_scoping import OrganizationScopedAdmin, ReadOnlyInline

from .models import Attachment, CannedResponse, Contact, ContactIdentity, Conversation, Label, Message


class ReadMostlyAdmin(OrganizationScopedAdmin):
    """Viewable and deletable by the organization's admins, never added or edited here."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Label)
class LabelAdmin(OrganizationScopedAdmin):
    list_display = ["name", "color", "organization"]
    list_filter = [("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name"]


@admin.register(CannedResponse)
class CannedResponseAdmin(OrganizationScopedAdmin):
    list_display = ["shortcut", "short_text", "organization"]
    list_filter = [("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["shortcut", "text"]

    @admin.display(description="text")
    def short_text(self, obj) -> str:
        return obj.text if len(obj.text) <= 80 else obj.text[:80] + "…"


class ContactIdentityInline(ReadOnlyInline):
    model = ContactIdentity
    fk_name = "contact"
    fields = ["kind", "value", "channel", "opted_out_at", "blocked_at", "undeliverable_at", "created_at"]
    readonly_fields = fields


@admin.register(Contact)
class ContactAdmin(OrganizationScopedAdmin):
    list_display = ["__str__", "organization", "created_at", "updated_at"]
    list_filter = [("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "identities__value"]
    inlines = [ContactIdentityInline]
    readonly_fields = ["merged_into", "created_at", "updated_at"]
    fields = ["organization", "name", "notes", "attributes", "merged_into", "created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        # A contact never moves between organizations.
        return [*self.readonly_fields, "organization"] if obj else self.readonly_fields

    def get_search_results(self, request, queryset, search_term):
        queryset, _ = super().get_search_results(request, queryset, search_term)
        return queryset.distinct(), False


@admin.register(ContactIdentity)
class ContactIdentityAdmin(ReadMostlyAdmin):
    list_display = ["kind", "value", "contact", "channel", "organization", "created_at"]
    list_filter = ["kind", ("channel", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["value", "contact__name"]
    list_select_related = ["contact", "channel", "organization"]


@admin.register(Conversation)
class ConversationAdmin(ReadMostlyAdmin):
    list_display = [
        "__str__",
        "contact",
        "channel",
        "status",
        "assignee",
        "team",
        "priority",
        "last_activity_at",
    ]
    list_filter = [
        "status",
        "priority",
        ("channel", admin.RelatedOnlyFieldListFilter),
        ("assignee", admin.RelatedOnlyFieldListFilter),
        ("team", admin.RelatedOnlyFieldListFilter),
        ("labels", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["subject", "contact__name", "contact__identities__value", "last_message_preview"]
    list_select_related = ["contact", "channel", "assignee", "team"]
    date_hierarchy = "last_activity_at"
    readonly_fields = ["messages_link"]

    @admin.display(description="messages")
    def messages_link(self, obj) -> str:
        url = reverse("admin:inbox_message_changelist") + f"?conversation__id__exact={obj.pk}"
        return format_html('<a href="{}">{} message(s)</a>', url, obj.messages.count())

    def get_search_results(self, request, queryset, search_term):
        queryset, _ = super().get_search_results(request, queryset, search_term)
        return queryset.distinct(), False


class AttachmentInline(ReadOnlyInline):
    model = Attachment
    fields = ["filename", "content_type", "size", "status", "file", "error"]
    readonly_fields = fields


@admin.register(Message)
class MessageAdmin(ReadMostlyAdmin):
    list_display = [
        "__str__",
        "conversation",
        "channel",
        "direction",
        "type",
        "status",
        "error_code",
        "created_at",
    ]
    list_filter = ["direction", "status", "type", "private", ("channel", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["text", "platform_message_id", "error_reason"]
    list_select_related = ["conversation", "channel"]
    date_hierarchy = "created_at"
    inlines = [AttachmentInline]


@admin.register(Attachment)
class AttachmentAdmin(ReadMostlyAdmin):
    list_display = ["__str__", "message", "content_type", "size", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["filename", "platform_media_id"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
