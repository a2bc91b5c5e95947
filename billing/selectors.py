"""Billing reads. Every selector takes the organization, so tenant scoping never lives in views."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db.models import QuerySet, Sum
from django.db.models.functions import TruncDate

from .models import ZERO, CreditAccount, CreditEntry, Invoice, UsageRecord
from .services import credit_floor, default_currency, plan_default

GROUP_BY_FIELDS = ("channel", "meter", "day")


def credit_account_get(*, organization_id: int) -> CreditAccount:
    """The organization's account; an unsaved empty one when it has never had any credit."""
    account = CreditAccount.objects.select_related("plan").filter(organization_id=organization_id).first()
    if account is None:
        plan = plan_default()
        account = CreditAccount(organization_id=organization_id, currency=plan.currency if plan else default_currency())
    return account


def credit_entry_list(*, organization_id: int, limit: int = 100) -> QuerySet[CreditEntry]:
    return CreditEntry.objects.filter(organization_id=organization_id).order_by("-id")[:limit]


def _window(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, end+1 00:00) in UTC: `end` is inclusive."""
    return (
        datetime(start.year, start.month, start.day, tzinfo=UTC),
        datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1),
    )


def usage_list(*, organization_id: int, start: date, end: date) -> QuerySet[UsageRecord]:
    since, until = _window(start, end)
    return UsageRecord.objects.filter(
        organization_id=organization_id, occurred_at__gte=since, occurred_at__lt=until
    ).order_by("occurred_at", "id")


def usage_summary(*, organization_id: int, start: date, end: date, group_by: tuple[str, ...] = GROUP_BY_FIELDS) -> list[dict]:
    """Usage between two UTC dates (inclusive), summed by the chosen dimensions: channel (id and
    kind), meter, day. Dimensions not grouped by are None. Refunds net out (negative rows)."""
    unknown = set(group_by) - set(GROUP_BY_FIELDS)
    if unknown:
        raise ValueError(f"cannot group by {', '.join(sorted(unknown))}")
    qs = usage_list(organization_id=organization_id, start=start, end=end).order_by()
    values = []
    if "channel" in group_by:
        values += ["channel_id", "channel_kind"]
    if "meter" in group_by:
        values.append("meter")
    if "day" in group_by:
        qs = qs.annotate(day=TruncDate("occurred_at", tzinfo=UTC))
        values.append("day")
    rows = qs.values(*values).annotate(quantity=Sum("quantity"), cost=Sum("cost")).order_by(*values)
    return [
        {
            "channel": row.get("channel_id"),
            "channel_kind": row.get("channel_kind"),
            "meter": row.get("meter"),
            "day": row.get("day"),
            "quantity": row["quantity"] or 0,
            "cost": row["cost"] or ZERO,
        }
        for row in rows
    ]


def usage_total(*, organization_id: int, start: date, end: date) -> Decimal:
    total = usage_list(organization_id=organization_id, start=start, end=end).aggregate(total=Sum("cost"))["total"]
    return total or ZERO


def usage_by_channel_kind(*, organization_id: int, start: date, end: date) -> list[dict]:
    """For the billing page's chart: per channel kind, quantity, cost and its share of the largest cost."""
    rows = list(
        usage_list(organization_id=organization_id, start=start, end=end)
        .order_by()
        .values("channel_kind")
        .annotate(quantity=Sum("quantity"), cost=Sum("cost"))
        .order_by("-cost", "channel_kind")
    )
    top = max((row["cost"] for row in rows), default=ZERO)
    top_quantity = max((row["quantity"] for row in rows), default=0)
    for row in rows:
        if top > 0:
            row["percent"] = int(row["cost"] / top * 100)
        else:
            row["percent"] = int(row["quantity"] / top_quantity * 100) if top_quantity else 0
    return rows


def invoice_list(*, organization_id: int) -> QuerySet[Invoice]:
    return Invoice.objects.filter(organization_id=organization_id, status=Invoice.Status.ISSUED).order_by(
        "-period_start", "-id"
    )


def invoice_get(*, organization_id: int, invoice_id: int) -> Invoice:
    """An issued invoice of this organization (Invoice.DoesNotExist otherwise, also for other tenants)."""
    return Invoice.objects.prefetch_related("lines").get(
        organization_id=organization_id, pk=invoice_id, status=Invoice.Status.ISSUED
    )


def billing_banner(*, organization_id: int) -> dict | None:
    """What the inbox shows above the conversations, or None: out of credit (sending is refused) or
    below the owner's low-balance threshold."""
    account = CreditAccount.objects.select_related("plan").filter(organization_id=organization_id).first()
    if account is None:
        return None
    plan = account.plan if account.plan_id else plan_default()
    available = account.balance - account.held - credit_floor(account)
    priced = plan is not None and plan.prices.filter(unit_price__gt=0).exists()
    if priced and available <= 0:
        return {
            "level": "error",
            "code": "insufficient_credits",
            "message": "You are out of credit: outbound messages are refused until you buy credits. "
            "Incoming messages keep arriving.",
            "balance": str(account.balance),
            "currency": account.currency,
            "url": "/billing/",
        }
    if account.low_balance_alerted:
        return {
            "level": "warning",
            "code": "low_balance",
            "message": f"Your credit is low: {account.balance} {account.currency} left.",
            "balance": str(account.balance),
            "currency": account.currency,
            "url": "/billing/",
        }
    return None

