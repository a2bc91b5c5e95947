"""Billing: the price book, the append-only usage ledger, prepaid credits, invoices and Stripe top-ups.

Money is Decimal everywhere (never float). Usage rows keep the unit price and cost they were recorded
at, so a later price change never rewrites the past. The credit balance is a cached sum of the ledger,
kept in the same transaction as every ledger entry (see services.py for the locking).
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from organizations.models import Organization

MONEY = {"max_digits": 14, "decimal_places": 4}
UNIT_PRICE = {"max_digits": 14, "decimal_places": 6}
ZERO = Decimal("0")


class ImmutableError(Exception):
    """An issued invoice (or its lines), a usage row or a ledger entry was about to be changed."""


class Plan(models.Model):
    """What an organization pays by (its prices) and what it may use (its quotas). Null quota = unlimited."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    currency = models.CharField(max_length=3, default="EUR", help_text="ISO 4217; all its prices use it.")
    is_default = models.BooleanField(
        default=False, help_text="Used by organizations that have no plan of their own (at most one plan)."
    )
    max_channels = models.PositiveIntegerField(null=True, blank=True)
    max_agents = models.PositiveIntegerField(null=True, blank=True, help_text="Members of any role.")
    max_messages_per_day = models.PositiveIntegerField(null=True, blank=True, help_text="Outbound, UTC days.")
    overdraft = models.DecimalField(
        **MONEY, default=ZERO, help_text="How far below zero the balance may go (a positive amount)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="plan_one_default"),
            models.CheckConstraint(condition=Q(overdraft__gte=0), name="plan_overdraft_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def clean(self) -> None:
        self.currency = (self.currency or "").upper()


class Price(models.Model):
    """One unit price of a meter on a plan, from `effective_from` on.

    The most specific price wins (channel kind and country given over blank), then the newest one
    already in effect at the event's time. No price at all means the meter is free (still metered).
    """

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="prices")
    meter = models.CharField(max_length=64, help_text="e.g. message.out.twilio_sms, message.out.whatsapp_cloud.marketing")
    channel_kind = models.CharField(max_length=32, blank=True, help_text="Blank: any channel kind.")
    country = models.CharField(max_length=2, blank=True, help_text="Destination, ISO 3166 alpha-2. Blank: any.")
    unit_price = models.DecimalField(**UNIT_PRICE)
    currency = models.CharField(max_length=3, default="EUR")
    effective_from = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["plan", "meter", "channel_kind", "country", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "meter", "channel_kind", "country", "effective_from"], name="price_unique_version"
            ),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="price_not_negative"),
        ]
        indexes = [models.Index(fields=["plan", "meter", "effective_from"], name="price_lookup")]

    def __str__(self) -> str:
        scope = "/".join(x for x in (self.channel_kind, self.country) if x) or "any"
        return f"{self.meter} [{scope}] {self.unit_price} {self.currency} from {self.effective_from:%Y-%m-%d}"

    def clean(self) -> None:
        self.currency = (self.currency or "").upper()
        self.country = (self.country or "").upper()
        if self.plan_id and self.currency != self.plan.currency:
            raise ValidationError({"currency": f"The plan bills in {self.plan.currency}."})


class UsageRecord(models.Model):
    """Append-only usage ledger: one row per billable event, recorded once (unique idempotency key).

    A reversal (usage_refund) is a new row with negative quantity and cost pointing at the original;
    rows are never updated (a database trigger refuses it).
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="usage_records")
    channel_id = models.BigIntegerField(null=True, blank=True)
    channel_kind = models.CharField(max_length=32, blank=True)
    meter = models.CharField(max_length=64)
    country = models.CharField(max_length=2, blank=True)
    quantity = models.IntegerField(default=1)
    unit_price = models.DecimalField(**UNIT_PRICE, default=ZERO)
    cost = models.DecimalField(**MONEY, default=ZERO)
    currency = models.CharField(max_length=3, blank=True)
    price = models.ForeignKey(Price, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reverses = models.OneToOneField("self", null=True, blank=True, on_delete=models.CASCADE, related_name="reversal")
    reason = models.CharField(max_length=255, blank=True)
    idempotency_key = models.CharField(max_length=255, unique=True)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "occurred_at"], name="usage_org_time"),
            models.Index(fields=["organization", "meter", "occurred_at"], name="usage_org_meter_time"),
        ]

    def __str__(self) -> str:
        return f"{self.meter} x{self.quantity} ({self.idempotency_key})"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ImmutableError("usage rows are append-only; reverse them with usage_refund")
        super().save(*args, **kwargs)


class CreditAccount(models.Model):
    """An organization's prepaid credit. `balance` always equals the sum of its entries' amounts, and
    `held` the sum of its open holds; both change only under this row's lock (services.py)."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="credit_account")
    plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.PROTECT, related_name="accounts")
    currency = models.CharField(max_length=3, default="EUR")
    balance = models.DecimalField(**MONEY, default=ZERO)
    held = models.DecimalField(**MONEY, default=ZERO)
    overdraft = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="Overrides the plan's overdraft when set."
    )
    low_balance_threshold = models.DecimalField(**MONEY, null=True, blank=True)
    low_balance_alerted = models.BooleanField(
        default=False, help_text="Set when the balance crossed the threshold; cleared when it is back above."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(held__gte=0), name="credit_held_not_negative"),
            models.CheckConstraint(
                condition=Q(overdraft__isnull=True) | Q(overdraft__gte=0), name="credit_overdraft_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization}: {self.balance} {self.currency}"


class CreditEntry(models.Model):
    """One movement of credit. Signed amount: purchases, grants and refunds add; consumption subtracts."""

    class Kind(models.TextChoices):
        PURCHASE = "purchase", "Purchase"
        GRANT = "grant", "Grant"
        CONSUMPTION = "consumption", "Consumption"
        REFUND = "refund", "Refund"
        ADJUSTMENT = "adjustment", "Adjustment"

    account = models.ForeignKey(CreditAccount, on_delete=models.CASCADE, related_name="entries")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    amount = models.DecimalField(**MONEY)
    balance_after = models.DecimalField(**MONEY)
    reference = models.CharField(max_length=255, blank=True, help_text="Usage key, Stripe session, note.")
    idempotency_key = models.CharField(max_length=255, unique=True)
    # CASCADE, not PROTECT: only an organization's deletion removes usage, and it removes its entries too.
    usage = models.OneToOneField(
        UsageRecord, null=True, blank=True, on_delete=models.CASCADE, related_name="credit_entry"
    )
    # A name, not a foreign key: entries are never updated, so a deleted user cannot be set to NULL.
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "credit entries"
        ordering = ["-id"]
        indexes = [models.Index(fields=["organization", "-id"], name="credit_entry_org")]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(kind__in=["purchase", "grant", "refund"], amount__gt=0)
                    | Q(kind="consumption", amount__lt=0)
                    | Q(kind="adjustment")
                ),
                name="credit_entry_sign_by_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} -> {self.balance_after}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ImmutableError("credit entries are append-only; correct them with an adjustment")
        super().save(*args, **kwargs)


class CreditHold(models.Model):
    """Credit reserved for a send before the platform is called (credit_reserve), captured by its
    usage row (usage_record with the same key) or released when the send fails."""

    account = models.ForeignKey(CreditAccount, on_delete=models.CASCADE, related_name="holds")
    idempotency_key = models.CharField(max_length=255, unique=True)
    amount = models.DecimalField(**MONEY)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["closed_at", "created_at"], name="credit_hold_open")]

    def __str__(self) -> str:
        return f"hold {self.amount} ({self.idempotency_key})"


class InvoiceSequence(models.Model):
    """The last invoice number issued in a year; locked while issuing, so numbers are gapless."""

    year = models.PositiveIntegerField(primary_key=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last_number}"


class Invoice(models.Model):
    """A month's usage of one organization. Immutable once issued (save() and a database trigger)."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ISSUED = "issued", "Issued"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="invoices")
    number = models.CharField(max_length=32, unique=True, null=True, blank=True)
    period_start = models.DateField()
    period_end = models.DateField(help_text="Inclusive.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    currency = models.CharField(max_length=3)
    total = models.DecimalField(**MONEY, default=ZERO)
    bill_to = models.CharField(max_length=200, blank=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-period_start", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "period_start"], name="invoice_one_per_period"),
            models.CheckConstraint(
                condition=Q(status="draft") | (Q(number__isnull=False) & Q(issued_at__isnull=False)),
                name="invoice_issued_has_number",
            ),
        ]

    def __str__(self) -> str:
        return self.number or f"Draft {self.organization} {self.period_start:%Y-%m}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            stored = Invoice.objects.filter(pk=self.pk).values_list("status", flat=True).first()
            if stored == Invoice.Status.ISSUED:
                raise ImmutableError(f"invoice {self.number} is issued and cannot change")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.status == Invoice.Status.ISSUED:
            raise ImmutableError(f"invoice {self.number} is issued and cannot be deleted")
        return super().delete(*args, **kwargs)


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    meter = models.CharField(max_length=64)
    channel_kind = models.CharField(max_length=32, blank=True)
    unit_price = models.DecimalField(**UNIT_PRICE)
    quantity = models.IntegerField()
    amount = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["meter", "channel_kind", "unit_price"]

    def __str__(self) -> str:
        return f"{self.meter} {self.channel_kind} x{self.quantity} = {self.amount}"

    def save(self, *args, **kwargs):
        status = Invoice.objects.filter(pk=self.invoice_id).values_list("status", flat=True).first()
        if status == Invoice.Status.ISSUED:
            raise ImmutableError("lines of an issued invoice cannot change")
        super().save(*args, **kwargs)


class CheckoutSession(models.Model):
    """A Stripe Checkout session buying credit. Completed once: its credit entry is unique per session."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        COMPLETED = "completed", "Completed"
        EXPIRED = "expired", "Expired"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    stripe_session_id = models.CharField(max_length=255, unique=True)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    url = models.URLField(max_length=2000, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.stripe_session_id} ({self.status})"


class StripeEvent(models.Model):
    """Every verified Stripe webhook event, once (Stripe redelivers)."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
