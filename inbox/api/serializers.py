"""REST API v1 serializers (CONTRACT.md): input serializers check shapes, output serializers render.

Output serializers are also the live-event payloads (inbox.live), so the websocket and the API show
the same objects. They read only what the selectors select_related/prefetch, so lists keep a constant
number of queries. Rules belong to services, not here.
"""

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils.html import format_html
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from inbox.models import Conversation, Message
from inbox.services.messages import reply_window_open
from providers.kinds import KIND_CHOICES
from providers.models import Channel


# --- common ----------------------------------------------------------------------------------------------
class ErrorSerializer(serializers.Serializer):
    """{"error": {"code", "message", "details"}}: the one error shape of the API."""

    error = inline_serializer(
        "ErrorBody",
        fields={
            "code": serializers.CharField(),
            "message": serializers.CharField(),
            "details": serializers.DictField(),
        },
    )


# --- channels ---------------------------------------------------------------------------------------------
class ChannelSerializer(serializers.Serializer):
    """A channel. Credentials are write-only: never returned, not even masked."""

    id = serializers.IntegerField(read_only=True)
    kind = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)
    config = serializers.DictField(read_only=True)
    webhook_url = serializers.CharField(read_only=True)
    tracking_webhook_url = serializers.SerializerMethodField()
    embed_snippet = serializers.SerializerMethodField()
    last_error = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)

    @extend_schema_field({"type": "string", "nullable": True, "description": "E-mail channels: the ESP's delivery-event URL."})
    def get_tracking_webhook_url(self, channel: Channel) -> str | None:
        return channel.tracking_webhook_url if channel.kind == "email" else None

    @extend_schema_field({"type": "string", "nullable": True, "description": "Web chat channels: the tag to paste into a site."})
    def get_embed_snippet(self, channel: Channel) -> str | None:
        if channel.kind != "webchat":
            return None
        return format_html(
            '<script src="{}/static/widget.js" data-channel="{}" async></script>',
            settings.PUBLIC_BASE_URL,
            channel.webhook_token,
        )


class ChannelCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=KIND_CHOICES)
    name = serializers.CharField(max_length=120)
    config = serializers.DictField(required=False, default=dict)
    credentials = serializers.DictField(required=False, default=dict, write_only=True)


class ChannelUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False)
    config = serializers.DictField(required=False, help_text="Merged over the stored config; a key set to null is removed.")
    credentials = serializers.DictField(
        required=False, write_only=True, help_text="Write-only. Absent or empty values keep the stored secret."
    )
    status = serializers.ChoiceField(choices=[Channel.Status.ACTIVE, Channel.Status.PAUSED], required=False)


class ChannelTestSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    detail = serializers.CharField()


# --- contacts ---------------------------------------------------------------------------------------------
class ContactIdentitySerializer(serializers.Serializer):
    kind = serializers.CharField()
    value = serializers.CharField()
    channel = serializers.IntegerField(source="channel_id", allow_null=True)


class ContactSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    identities = ContactIdentitySerializer(many=True)
    notes = serializers.CharField()
    attributes = serializers.DictField()
    merged_into = serializers.IntegerField(source="merged_into_id", allow_null=True)
    created_at = serializers.DateTimeField()


class ContactListQuerySerializer(serializers.Serializer):
    q = serializers.CharField(required=False, allow_blank=True, max_length=200)


class ContactMergeInputSerializer(serializers.Serializer):
    other = serializers.IntegerField(min_value=1, help_text="The contact merged into this one.")


class ContactUnmergeInputSerializer(serializers.Serializer):
    merge = serializers.IntegerField(min_value=1, help_text="The id of the merge to undo (`merge.id` of the merge answer).")


class ContactMergeSerializer(serializers.Serializer):
    """What a merge moved, kept so that it can be undone."""

    id = serializers.IntegerField()
    primary = serializers.IntegerField(source="primary_id")
    merged = serializers.IntegerField(source="merged_id")
    identity_ids = serializers.ListField(child=serializers.IntegerField())
    conversation_ids = serializers.ListField(child=serializers.IntegerField())
    created_at = serializers.DateTimeField()
    undone_at = serializers.DateTimeField(allow_null=True)


class ContactMergeResultSerializer(ContactSerializer):
    """The merged (surviving) contact plus the merge record (its id undoes it)."""

    merge = ContactMergeSerializer()


class ContactUnmergeResultSerializer(serializers.Serializer):
    contact = ContactSerializer(help_text="The contact the merge went into.")
    restored = ContactSerializer(help_text="The contact restored by the unmerge.")
    merge = ContactMergeSerializer()


# --- conversations ---------------------------------------------------------------------------------------
class ConversationContactSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ConversationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    channel = serializers.IntegerField(source="channel_id")
    contact = ConversationContactSerializer()
    status = serializers.CharField()
    assignee = serializers.IntegerField(source="assignee_id", allow_null=True)
    team = serializers.IntegerField(source="team_id", allow_null=True)
    labels = serializers.SerializerMethodField()
    priority = serializers.CharField()
    snoozed_until = serializers.DateTimeField(allow_null=True)
    last_activity_at = serializers.DateTimeField()
    last_inbound_at = serializers.DateTimeField(allow_null=True)
    unread_count = serializers.IntegerField()
    last_message_preview = serializers.CharField()
    reply_window_open = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_labels(self, conversation: Conversation) -> list[str]:
        # Sorted in Python: the prefetch cache serves .all() only without an extra order_by().
        return sorted(label.name for label in conversation.labels.all())

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_reply_window_open(self, conversation: Conversation) -> bool:
        return reply_window_open(conversation)


class ConversationListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Conversation.Status.choices, required=False)
    channel = serializers.IntegerField(required=False, min_value=1)
    assignee = serializers.CharField(required=False, help_text='A user id, "me" or "none" (unassigned).')
    label = serializers.CharField(required=False, max_length=60)
    q = serializers.CharField(required=False, allow_blank=True, max_length=200)

    def validate_assignee(self, value: str) -> str | int:
        value = value.strip().lower()
        if value == "me":
            request = self.context.get("request")
            if request is None or not request.user.is_authenticated:
                raise serializers.ValidationError('"me" needs a logged-in user; an API key acts as no user.')
            return value
        if value == "none":
            return value
        if value.isdigit():
            return int(value)
        raise serializers.ValidationError('Expected a user id, "me" or "none".')


class ConversationUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Conversation.Status.choices, required=False)
    assignee = serializers.IntegerField(required=False, allow_null=True, help_text="A member's user id, or null.")
    team = serializers.IntegerField(required=False, allow_null=True, help_text="A team id, or null.")
    labels = serializers.ListField(
        child=serializers.CharField(max_length=60), required=False, help_text="Label names; replaces the set."
    )
    priority = serializers.ChoiceField(choices=Conversation.Priority.choices, required=False)
    snoozed_until = serializers.DateTimeField(required=False, allow_null=True, help_text="Required with status snoozed.")


# --- messages ---------------------------------------------------------------------------------------------
class AttachmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    filename = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField(allow_null=True)
    url = serializers.SerializerMethodField()
    status = serializers.CharField()

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_url(self, attachment) -> str | None:
        if attachment.file:
            from inbox.attachment_links import attachment_signed_url

            return attachment_signed_url(attachment)
        return attachment.source_url or None


class MessageErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    reason = serializers.CharField()


class MessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    conversation = serializers.IntegerField(source="conversation_id")
    direction = serializers.CharField()
    private = serializers.BooleanField()
    type = serializers.CharField()
    text = serializers.CharField()
    content = serializers.SerializerMethodField()
    attachments = AttachmentSerializer(many=True)
    status = serializers.CharField()
    error = serializers.SerializerMethodField()
    sender = serializers.IntegerField(source="sender_id", allow_null=True)
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    read_at = serializers.DateTimeField(allow_null=True)
    platform_message_id = serializers.CharField(allow_null=True)

    @extend_schema_field(serializers.DictField())
    def get_content(self, message: Message) -> dict:
        # Keys starting with "_" are the services' own bookkeeping, not part of the message.
        return {k: v for k, v in (message.content or {}).items() if not k.startswith("_")}

    @extend_schema_field(MessageErrorSerializer(allow_null=True))
    def get_error(self, message: Message) -> dict | None:
        if not message.error_code and message.status != Message.Status.FAILED:
            return None
        return {"code": message.error_code, "reason": message.error_reason}


class TemplateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=512)
    language = serializers.CharField(max_length=20)
    variables = serializers.JSONField(
        required=False, default=list, help_text="A list of values, or an object of named values."
    )

    def validate_variables(self, value):
        if not isinstance(value, list | dict):
            raise serializers.ValidationError("Expected a list or an object.")
        return value


class AttachmentUrlSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000)
    content_type = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    filename = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "format": "binary"},
            {
                "type": "object",
                "required": ["url"],
                "properties": {
                    "url": {"type": "string", "format": "uri"},
                    "content_type": {"type": "string"},
                    "filename": {"type": "string"},
                },
            },
        ]
    }
)
class AttachmentInputField(serializers.Field):
    """A multipart file upload, or {"url", "content_type", "filename"} in JSON.

    Becomes the dict message_create_outbound takes: {"file", "filename", "content_type", "size"} or
    {"url", "filename", "content_type"}.
    """

    def to_internal_value(self, data):
        if isinstance(data, UploadedFile):
            return {
                "file": data,
                "filename": (data.name or "")[:255],
                "content_type": (data.content_type or "application/octet-stream")[:200],
                "size": data.size,
            }
        if isinstance(data, dict):
            serializer = AttachmentUrlSerializer(data=data)
            serializer.is_valid(raise_exception=True)
            return dict(serializer.validated_data)
        raise serializers.ValidationError('Expected a file upload or {"url", "content_type", "filename"}.')

    def to_representation(self, value):
        return value


class MessageCreateSerializer(serializers.Serializer):
    """POST /conversations/{id}/messages/: {"text"}, {"template": {...}} or {"text", "private": true}."""

    text = serializers.CharField(required=False, allow_blank=True, max_length=65536, trim_whitespace=False)
    template = TemplateSerializer(required=False)
    private = serializers.BooleanField(required=False, default=False)
    attachments = serializers.ListField(child=AttachmentInputField(), required=False, max_length=10)

    def validate(self, attrs):
        if attrs.get("private") and attrs.get("template"):
            raise serializers.ValidationError({"template": ["A private note cannot be a template."]})
        return attrs


class MessageSendSerializer(serializers.Serializer):
    """POST /messages/: a message to a recipient on a channel; contact and conversation found or created."""

    channel = serializers.IntegerField(min_value=1)
    to = serializers.CharField(max_length=255, help_text="A phone number (E.164), e-mail address or chat id.")
    text = serializers.CharField(required=False, allow_blank=True, max_length=65536, trim_whitespace=False)
    template = TemplateSerializer(required=False)
    attachments = serializers.ListField(child=AttachmentInputField(), required=False, max_length=10)


def page_serializer(name: str, item: type[serializers.Serializer]) -> serializers.Serializer:
    """The schema of a cursor page: {"results": [...], "next": url or null}."""
    return inline_serializer(
        name,
        fields={"results": item(many=True), "next": serializers.URLField(allow_null=True)},
    )
