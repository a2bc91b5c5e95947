import json
import secrets

from django.conf import settings
from django.db import models
from django.urls import reverse
from encrypted_model_fields.fields import EncryptedTextField

from organizations.models import Organization

from .kinds import KIND_CHOICES


def new_webhook_token() -> str:
    return secrets.token_urlsafe(24)


class CredentialsDecryptionError(RuntimeError):
    """The credentials column did not decrypt: FIELD_ENCRYPTION_KEY changed or the row was tampered with.

    django-encrypted-model-fields returns undecryptable values as the raw string with no error
    (STACK-NOTES); we refuse to use such a value rather than send garbage to a platform.
    """


class Channel(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        ERROR = "error", "Error"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="channels")
    kind = models.CharField(max_length=32, choices=KIND_CHOICES)
    name = models.CharField(max_length=120)
    config = models.JSONField(default=dict, blank=True)
    # JSON object of the kind's secrets, Fernet-encrypted at rest. Read and write through .credentials.
    credentials_encrypted = EncryptedTextField(default="", blank=True)
    # Plain, indexed lookup key (phone_number_id, bot id, page id, account_sid:from): encrypted
    # fields cannot be filtered on.
    lookup_key = models.CharField(max_length=200, blank=True, db_index=True)
    webhook_token = models.CharField(max_length=64, unique=True, default=new_webhook_token, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_webhook_at = models.DateTimeField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["organization", "kind"], name="channel_org_kind")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    @property
    def credentials(self) -> dict:
        raw = self.credentials_encrypted or ""
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise CredentialsDecryptionError(f"credentials of channel {self.pk} do not decrypt") from exc
        if not isinstance(value, dict):
            raise CredentialsDecryptionError(f"credentials of channel {self.pk} are not an object")
        return value

    @credentials.setter
    def credentials(self, value: dict) -> None:
        self.credentials_encrypted = json.dumps(value or {}, sort_keys=True)

    @property
    def webhook_url(self) -> str:
        path = reverse("webhook", kwargs={"kind": self.kind, "token": self.webhook_token})
        return f"{settings.PUBLIC_BASE_URL}{path}"

    @property
    def tracking_webhook_url(self) -> str:
        path = reverse("webhook-tracking", kwargs={"kind": self.kind, "token": self.webhook_token})
        return f"{settings.PUBLIC_BASE_URL}{path}"

    @property
    def api_base_url(self) -> str | None:
        return (self.config or {}).get("api_base_url") or None

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class WebhookEvent(models.Model):
    """The raw log of every verified webhook delivery. The only place raw payloads are kept."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="webhook_events")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="webhook_events")
    # "inbound" for the main URL, "tracking" for delivery-event URLs (e-mail ESPs).
    endpoint = models.CharField(max_length=16, default="inbound")
    # The platform's own id for the delivery (update_id, MessageSid+status, ...), else a body hash.
    event_id = models.CharField(max_length=255)
    body = models.BinaryField()
    headers = models.JSONField(default=dict, blank=True)
    content_type = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    processing_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "endpoint", "event_id"], name="webhookevent_unique_event")
        ]
        indexes = [
            models.Index(fields=["organization", "status", "-received_at"], name="webhookevent_org_status"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.event_id} ({self.status})"
