from django.conf import settings
from django.db import models
from django.db.models import Q

from organizations.models import Organization, Team
from providers.models import Channel


class Label(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=60)
    color = models.CharField(max_length=7, default="#6b7280")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="label_unique_name")]

    def __str__(self) -> str:
        return self.name


class CannedResponse(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="canned_responses")
    shortcut = models.SlugField(max_length=60)
    text = models.TextField()

    class Meta:
        ordering = ["shortcut"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "shortcut"], name="cannedresponse_unique_shortcut")
        ]

    def __str__(self) -> str:
        return f"/{self.shortcut}"


class Contact(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    # Set when this contact was merged into another; reversible (see ContactMerge).
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "name"], name="contact_org_name")]

    def __str__(self) -> str:
        return self.name or f"Contact {self.pk}"


class ContactIdentity(models.Model):
    """How a contact is reached on a platform: a normalized value, unique per organization and kind."""

    class Kind(models.TextChoices):
        PHONE = "phone", "Phone (E.164)"
        WHATSAPP = "whatsapp", "WhatsApp id"
        EMAIL = "email", "E-mail"
        TELEGRAM = "telegram", "Telegram user id"
        MESSENGER = "messenger", "Messenger page-scoped id"
        INSTAGRAM = "instagram", "Instagram-scoped id"
        WEBCHAT = "webchat", "Web chat visitor"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    value = models.CharField(max_length=255)
    # The channel the identity was first seen on (page-scoped ids only mean something on their page).
    channel = models.ForeignKey(Channel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    opted_out_at = models.DateTimeField(null=True, blank=True)
    blocked_at = models.DateTimeField(null=True, blank=True)
    undeliverable_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "contact identities"
        constraints = [
            models.UniqueConstraint(fields=["organization", "kind", "value"], name="identity_unique_value")
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class ContactMerge(models.Model):
    """Record of a merge, so that an unmerge can restore both contacts exactly."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    primary = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    merged = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    identity_ids = models.JSONField(default=list)
    conversation_ids = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    undone_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Merge of {self.merged_id} into {self.primary_id}"


class Conversation(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PENDING = "pending", "Pending"
        SNOOZED = "snoozed", "Snoozed"
        RESOLVED = "resolved", "Resolved"

    class Priority(models.TextChoices):
        NONE = "none", "None"
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"
        URGENT = "urgent", "Urgent"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="conversations")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="conversations")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="conversations")
    # One conversation per (channel, contact, thread): chat channels use "", e-mail the thread root.
    thread_key = models.CharField(max_length=255, blank=True, default="")
    subject = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_conversations"
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations")
    labels = models.ManyToManyField(Label, blank=True, related_name="conversations")
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NONE)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField()
    # The customer's last message: opens the 24-hour service window on WhatsApp and Messenger.
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    last_message_preview = models.CharField(max_length=200, blank=True)
    unread_count = models.PositiveIntegerField(default=0)
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-last_activity_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "contact", "thread_key"], name="conversation_unique_thread")
        ]
        indexes = [
            models.Index(fields=["organization", "-last_activity_at", "-id"], name="conv_org_activity"),
            models.Index(fields=["organization", "status", "-last_activity_at", "-id"], name="conv_org_status_activity"),
            models.Index(fields=["organization", "assignee", "status", "-last_activity_at"], name="conv_org_assignee"),
            models.Index(fields=["organization", "team", "status", "-last_activity_at"], name="conv_org_team"),
            models.Index(fields=["organization", "channel", "-last_activity_at"], name="conv_org_channel"),
            models.Index(fields=["status", "snoozed_until"], name="conv_snoozed"),
        ]

    def __str__(self) -> str:
        return f"Conversation {self.pk}"


class Message(models.Model):
    class Direction(models.TextChoices):
        IN = "in", "Inbound"
        OUT = "out", "Outbound"

    class Type(models.TextChoices):
        TEXT = "text", "Text"
        MEDIA = "media", "Media"
        TEMPLATE = "template", "Template"
        LOCATION = "location", "Location"
        CONTACT = "contact", "Contact card"
        REACTION = "reaction", "Reaction"
        INTERACTIVE = "interactive", "Interactive reply"
        SYSTEM = "system", "System event"
        UNSUPPORTED = "unsupported", "Unsupported"

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        READ = "read", "Read"
        FAILED = "failed", "Failed"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    private = models.BooleanField(default=False)
    type = models.CharField(max_length=12, choices=Type.choices, default=Type.TEXT)
    text = models.TextField(blank=True)
    # Structured content: location, contact cards, template name/language/variables, reaction target,
    # reply context, interactive ids, e-mail headers.
    content = models.JSONField(default=dict, blank=True)
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices)
    platform_message_id = models.CharField(max_length=255, null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_reason = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    segments = models.PositiveIntegerField(null=True, blank=True)
    sending_started_at = models.DateTimeField(null=True, blank=True)
    # A pending send not to be tried before this (a retry's backoff, the platform's Retry-After, a
    # recipient's rate limit): the channel's send runner skips it until then.
    send_after = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "platform_message_id"],
                condition=Q(platform_message_id__isnull=False),
                name="message_unique_platform_id",
            ),
            models.UniqueConstraint(
                fields=["organization", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="message_unique_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "created_at", "id"], name="message_conv_created"),
            models.Index(fields=["status", "sending_started_at"], name="message_status_sending"),
            # The send runner's claim: a channel's pending messages, oldest first.
            models.Index(
                fields=["channel", "id"], condition=Q(status="pending"), name="message_pending_by_channel"
            ),
        ]

    def __str__(self) -> str:
        return f"Message {self.pk} ({self.direction}, {self.status})"


def attachment_path(instance: "Attachment", filename: str) -> str:
    return f"attachments/{instance.organization_id}/{instance.message_id}/{filename}"


class Attachment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending download"
        STORED = "stored", "Stored"
        FAILED = "failed", "Failed"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_path, max_length=500, blank=True)
    filename = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=200, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    # Where the platform keeps it: a media id (WhatsApp, Telegram file_id) or a URL (Twilio, Meta).
    platform_media_id = models.CharField(max_length=255, blank=True)
    source_url = models.URLField(max_length=2000, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.filename or f"Attachment {self.pk}"
