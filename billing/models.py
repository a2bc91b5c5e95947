from django.db import models

from organizations.models import Organization


class UsageRecord(models.Model):
    """Append-only usage ledger: one row per billable event, recorded once (unique idempotency key)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="usage_records")
    channel_id = models.BigIntegerField(null=True, blank=True)
    channel_kind = models.CharField(max_length=32, blank=True)
    meter = models.CharField(max_length=64)
    quantity = models.PositiveIntegerField(default=1)
    idempotency_key = models.CharField(max_length=255, unique=True)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "occurred_at"], name="usage_org_time")]

    def __str__(self) -> str:
        return f"{self.meter} x{self.quantity} ({self.idempotency_key})"
