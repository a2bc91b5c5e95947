"""Billing writes: usage metering, the credit ledger, holds, quotas, invoices, Stripe top-ups.

Takes plain values (organization id, channel kind, meter, quantity, idempotency key); never imports
inbox. Every change of an organization's credit happens under a lock of its CreditAccount row
(SELECT ... FOR UPDATE), in the same transaction as the ledger entry and the usage row it belongs to,
so the balance always equals the ledger's sum and concurrent workers queue on that one row.

The floor: a balance may not go below -overdraft (the account's, else its plan's, else 0). Sends are
gated before the platform is called: credit_check at message creation (fast feedback) and
credit_reserve when the send starts (locked, strict). usage_record then captures the hold with the
same key, so a platform-accepted message is always recorded.
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import stripe
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from organizations.models import Membership, Organization, Role

from .errors import CheckoutError, InsufficientCredits, QuotaExceeded, WebhookVerificationError
from .models import (
    ZERO,
    CheckoutSession,
    CreditAccount,
    CreditEntry,
    CreditHold,
    Invoice,
    InvoiceLine,
    InvoiceSequence,
    Plan,
    Price,
    StripeEvent,
    UsageRecord,
)

logger = logging.getLogger(__name__)

CENT = Decimal("0.0001")
OUTBOUND_PREFIX = "message.out."
INVOICE_PREFIX = "ALX"


def money(value) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def default_currency() -> str:
    return getattr(settings, "BILLING_CURRENCY", "EUR")


# --- price book --------------------------------------------------------------------------------------
# The default plan is read by every priced or metered event; it changes a few times a year. Each
# process keeps it for BILLING_PLAN_CACHE_SECONDS (saves a query per billing call on the message path);
# a Plan saved or deleted in this process clears it at once (billing/apps.py), other processes within
# the TTL.
_default_plan: tuple[float, Plan | None] | None = None


def plan_default() -> Plan | None:
    global _default_plan
    ttl = settings.BILLING_PLAN_CACHE_SECONDS
    if ttl > 0 and _default_plan is not None and time.monotonic() - _default_plan[0] < ttl:
        return _default_plan[1]
    plan = Plan.objects.filter(is_default=True).first()
    _default_plan = (time.monotonic(), plan)
    return plan


def plan_default_forget(**_) -> None:
    global _default_plan
    _default_plan = None


def _plan_for(account: CreditAccount) -> Plan | None:
    if account.plan_id:
        return account.plan
    return plan_default()


def price_lookup(
    *, plan_id: int | None, meter: str, at: datetime, channel_kind: str = "", country: str = ""
) -> Price | None:
    """The price of one unit of `meter` at `at`: the most specific one (channel kind, then country,
    given over blank), and among those the newest already in effect. None: the meter is free."""
    if plan_id is None:
        return None
    return _price_best(_price_candidates(plan_id, meter, channel_kind, country).filter(effective_from__lte=at), at)


def _price_candidates(plan_id: int, meter: str, channel_kind: str, country: str):
    return Price.objects.filter(
        plan_id=plan_id,
        meter=meter,
        channel_kind__in={channel_kind, ""},
        country__in={(country or "").upper(), ""},
    )


def _price_best(candidates, at: datetime) -> Price | None:
    best = None
    for price in candidates:
        if price.effective_from > at:
            continue
        rank = (bool(price.channel_kind), bool(price.country), price.effective_from)
        if best is None or rank > best[0]:
            best = (rank, price)
    return best[1] if best else None


class PriceBook:
    """One organization's prices for a batch of events (a send batch): the account and its plan are read
    once, and each (meter, channel kind, country) once; price() then answers for any moment exactly as
    price_lookup would."""

    def __init__(self, organization_id: int) -> None:
        self.organization_id = organization_id
        self.account, self.plan = _account_and_plan(organization_id)
        self._candidates: dict[tuple, list[Price]] = {}

    def price(self, *, meter: str, at: datetime, channel_kind: str = "", country: str = "") -> Price | None:
        if self.plan is None:
            return None
        key = (meter, channel_kind, (country or "").upper())
        if key not in self._candidates:
            self._candidates[key] = list(_price_candidates(self.plan.pk, meter, channel_kind, country))
        return _price_best(self._candidates[key], at)

    def cost(self, *, meter: str, quantity: int, at: datetime, channel_kind: str = "", country: str = "") -> Decimal:
        price = self.price(meter=meter, at=at, channel_kind=channel_kind, country=country)
        return _cost(price, quantity)[1]


def price_book(*, organization_id: int) -> PriceBook:
    return PriceBook(organization_id)


def _plan_price(
    plan: Plan | None, *, meter: str, at: datetime, channel_kind: str = "", country: str = ""
) -> Price | None:
    """price_lookup for a plan that may be None (no price book: everything is free)."""
    return price_lookup(
        plan_id=plan.pk if plan else None, meter=meter, at=at, channel_kind=channel_kind, country=country
    )


def _cheapest_send(
    *, plan_id: int | None, channel_kind: str, meter_hint: str | None, at: datetime
) -> Decimal:
    """The cheapest price in effect now of any outbound meter of this channel kind (or of meter_hint)."""
    if plan_id is None:
        return ZERO
    prices = Price.objects.filter(
        plan_id=plan_id, channel_kind__in={channel_kind, ""}, effective_from__lte=at
    )
    if meter_hint:
        prices = prices.filter(meter=meter_hint)
    else:
        prices = prices.filter(meter__startswith=f"{OUTBOUND_PREFIX}{channel_kind}")
    current: dict[tuple, Price] = {}
    for price in prices.order_by("effective_from"):
        current[(price.meter, price.channel_kind, price.country)] = price
    return min((p.unit_price for p in current.values()), default=ZERO)


# --- accounts and the ledger -------------------------------------------------------------------------
def credit_account_get_or_create(*, organization_id: int) -> CreditAccount:
    plan = plan_default()
    account, _ = CreditAccount.objects.get_or_create(
        organization_id=organization_id,
        defaults={"currency": plan.currency if plan else default_currency()},
    )
    return account


def _account_and_plan(organization_id: int) -> tuple[CreditAccount | None, Plan | None]:
    """The organization's account (None before its first billable event) and the plan that prices it,
    read without locking: one query, two when the account follows the default plan."""
    account = CreditAccount.objects.select_related("plan").filter(organization_id=organization_id).first()
    plan = account.plan if account is not None and account.plan_id else plan_default()
    return account, plan


def _account_locked(organization_id: int) -> CreditAccount:
    """The organization's account, locked until the end of the caller's transaction."""
    locked = CreditAccount.objects.select_for_update(of=("self",)).select_related("plan")
    account = locked.filter(organization_id=organization_id).first()
    if account is None:
        credit_account_get_or_create(organization_id=organization_id)
        account = locked.get(organization_id=organization_id)
    return account


def credit_floor(account: CreditAccount) -> Decimal:
    if account.overdraft is not None:
        return -account.overdraft
    plan = _plan_for(account)
    return -(plan.overdraft if plan else ZERO)


def _require_cover(account: CreditAccount, amount: Decimal) -> None:
    available = account.balance - account.held
    if available - amount < credit_floor(account):
        raise InsufficientCredits(
            f"Not enough credit: {amount} {account.currency} needed, "
            f"{max(available - credit_floor(account), ZERO)} {account.currency} available. Buy credits to continue.",
            details={
                "balance": str(account.balance),
                "held": str(account.held),
                "needed": str(amount),
                "currency": account.currency,
            },
        )


def _entry_write(
    account: CreditAccount,
    *,
    kind: str,
    amount: Decimal,
    idempotency_key: str,
    reference: str = "",
    usage: UsageRecord | None = None,
    created_by: str = "",
) -> CreditEntry:
    """Append one entry and move the cached balance with it. The account must be locked."""
    before = account.balance
    account.balance = money(before + amount)
    entry = CreditEntry.objects.create(
        account=account,
        organization_id=account.organization_id,
        kind=kind,
        amount=money(amount),
        balance_after=account.balance,
        reference=reference[:255],
        idempotency_key=idempotency_key,
        usage=usage,
        created_by=created_by[:150],
    )
    threshold = account.low_balance_threshold
    if threshold is not None:
        if account.balance < threshold and not account.low_balance_alerted:
            account.low_balance_alerted = True
            organization_id, balance, currency = account.organization_id, account.balance, account.currency
            transaction.on_commit(
                lambda: low_balance_notify(
                    organization_id=organization_id, balance=balance, threshold=threshold, currency=currency
                )
            )
        elif account.balance >= threshold and account.low_balance_alerted:
            account.low_balance_alerted = False
    account.save(update_fields=["balance", "low_balance_alerted", "updated_at"])
    return entry


def low_balance_notify(*, organization_id: int, balance: Decimal, threshold: Decimal, currency: str) -> int:
    """E-mail the owners that the balance crossed their threshold. Sent once per crossing (the
    account's low_balance_alerted flag, set under the lock, re-armed when the balance is back up)."""
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return 0
    recipients = sorted(
        {
            email
            for email in Membership.objects.filter(
                organization_id=organization_id, role=Role.OWNER
            ).values_list("user__email", flat=True)
            if email
        }
    )
    if not recipients:
        return 0
    try:
        return send_mail(
            subject=f"[Alexia] {organization.name}: credit balance is low ({balance} {currency})",
            message=(
                f"The credit balance of {organization.name} is {balance} {currency}, below your alert "
                f"threshold of {threshold} {currency}.\n\nWhen it runs out, outbound messages are refused "
                f"(inbound messages keep arriving). Buy credits on the billing page: "
                f"{settings.PUBLIC_BASE_URL}/billing/\n"
            ),
            from_email=None,
            recipient_list=recipients,
        )
    except OSError:
        logger.exception("low-balance e-mail for organization %s could not be sent", organization_id)
        return 0


def credit_add(
    *,
    organization_id: int,
    amount: Decimal,
    kind: str = CreditEntry.Kind.GRANT,
    idempotency_key: str,
    reference: str = "",
    created_by: str = "",
) -> tuple[CreditEntry, bool]:
    """Add (or, for an adjustment, also remove) credit. Returns (entry, created); a repeated key
    returns the first entry. A negative adjustment is refused below the floor (InsufficientCredits)."""
    amount = money(amount)
    if kind not in CreditEntry.Kind.values or kind == CreditEntry.Kind.CONSUMPTION:
        raise ValueError(f"credit_add takes purchase, grant, refund or adjustment, not {kind!r}")
    if amount == 0 or (amount < 0 and kind != CreditEntry.Kind.ADJUSTMENT):
        raise ValueError("the amount must be positive (only adjustments may be negative) and not zero")
    with transaction.atomic():
        account = _account_locked(organization_id)
        existing = CreditEntry.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing, False
        if amount < 0:
            _require_cover(account, -amount)
        entry = _entry_write(
            account,
            kind=kind,
            amount=amount,
            idempotency_key=idempotency_key,
            reference=reference,
            created_by=created_by,
        )
    return entry, True


def credit_consume(
    *, organization_id: int, amount: Decimal, idempotency_key: str, reference: str = ""
) -> CreditEntry:
    """Take credit for something not metered as usage (strict: InsufficientCredits below the floor)."""
    amount = money(amount)
    if amount <= 0:
        raise ValueError("a consumption is a positive amount")
    with transaction.atomic():
        account = _account_locked(organization_id)
        existing = CreditEntry.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
        _require_cover(account, amount)
        return _entry_write(
            account,
            kind=CreditEntry.Kind.CONSUMPTION,
            amount=-amount,
            idempotency_key=idempotency_key,
            reference=reference,
        )


def credit_settings_update(*, organization_id: int, low_balance_threshold: Decimal | None) -> CreditAccount:
    """The owner's alert threshold. Setting it re-arms the alert to the current balance."""
    with transaction.atomic():
        account = _account_locked(organization_id)
        account.low_balance_threshold = (
            money(low_balance_threshold) if low_balance_threshold is not None else None
        )
        account.low_balance_alerted = bool(
            account.low_balance_threshold is not None and account.balance < account.low_balance_threshold
        )
        account.save(update_fields=["low_balance_threshold", "low_balance_alerted", "updated_at"])
    return account


def credit_check(*, organization_id: int, channel_kind: str, meter_hint: str | None = None) -> None:
    """Raise InsufficientCredits when the available credit cannot cover the cheapest send on this
    channel kind (or of meter_hint). Called at message creation; reads without locking (the strict
    gate is credit_reserve). Free channels (no price) always pass."""
    _credit_check(organization_id, *_account_and_plan(organization_id), channel_kind, meter_hint)


def send_check(*, organization_id: int, channel_kind: str, meter_hint: str | None = None) -> None:
    """What a new outbound message must pass: credit_check and the messages_per_day quota_check, with
    one read of the account and its plan."""
    account, plan = _account_and_plan(organization_id)
    _credit_check(organization_id, account, plan, channel_kind, meter_hint)
    _quota_check(organization_id, plan, "messages_per_day", None, 1)


def _credit_check(
    organization_id: int, account: CreditAccount | None, plan: Plan | None, channel_kind: str, meter_hint: str | None
) -> None:
    cheapest = _cheapest_send(
        plan_id=plan.pk if plan else None, channel_kind=channel_kind, meter_hint=meter_hint, at=timezone.now()
    )
    if cheapest <= 0:
        return
    if account is None:
        account = CreditAccount(organization_id=organization_id, currency=plan.currency, plan=None)
    _require_cover(account, cheapest)


# --- holds -------------------------------------------------------------------------------------------
def _cost(price: Price | None, quantity: int) -> tuple[Decimal, Decimal]:
    unit = price.unit_price if price else ZERO
    return unit, money(unit * quantity)


def credit_reserve(
    *,
    organization_id: int,
    meter: str,
    quantity: int,
    idempotency_key: str,
    channel_kind: str = "",
    country: str = "",
) -> Decimal:
    """Hold the price of a send before the platform is called; strict (InsufficientCredits). Idempotent
    per key (a retried send keeps its one hold). Returns the amount held (0 when free).

    The price is looked up before the account is locked: a free send never takes the organization's
    account lock, which every send and every inbound message of the organization would queue behind."""
    _, plan = _account_and_plan(organization_id)
    price = _plan_price(plan, meter=meter, at=timezone.now(), channel_kind=channel_kind, country=country)
    if _cost(price, quantity)[1] <= 0:
        return ZERO
    with transaction.atomic():
        account = _account_locked(organization_id)
        hold = CreditHold.objects.filter(idempotency_key=idempotency_key).first()
        if hold is not None:
            return hold.amount if hold.closed_at is None else ZERO
        if UsageRecord.objects.filter(idempotency_key=idempotency_key).exists():
            return ZERO
        plan = _plan_for(account)
        price = _plan_price(plan, meter=meter, at=timezone.now(), channel_kind=channel_kind, country=country)
        _, cost = _cost(price, quantity)
        if cost <= 0:
            return ZERO
        _require_cover(account, cost)
        CreditHold.objects.create(account=account, idempotency_key=idempotency_key, amount=cost)
        account.held = money(account.held + cost)
        account.save(update_fields=["held", "updated_at"])
    return cost


def _hold_close_locked(account: CreditAccount, idempotency_key: str) -> Decimal:
    hold = (
        CreditHold.objects.select_for_update()
        .filter(idempotency_key=idempotency_key, closed_at__isnull=True)
        .first()
    )
    if hold is None:
        return ZERO
    hold.closed_at = timezone.now()
    hold.save(update_fields=["closed_at"])
    account.held = money(account.held - hold.amount)
    account.save(update_fields=["held", "updated_at"])
    return hold.amount


def credit_release(*, organization_id: int, idempotency_key: str) -> Decimal:
    """Release a send's hold (it failed before the platform accepted it). Returns the amount released."""
    with transaction.atomic():
        account = _account_locked(organization_id)
        return _hold_close_locked(account, idempotency_key)


def credit_hold_sweep(*, older_than: timedelta = timedelta(hours=24)) -> int:
    """Release holds left open by sends that never finished (their message was deleted or lost)."""
    released = 0
    stale = CreditHold.objects.filter(closed_at__isnull=True, created_at__lt=timezone.now() - older_than)
    for organization_id, key in stale.values_list("account__organization_id", "idempotency_key")[:1000]:
        if credit_release(organization_id=organization_id, idempotency_key=key) > 0:
            released += 1
    return released


# --- usage -------------------------------------------------------------------------------------------
def usage_record(
    *,
    organization_id: int,
    meter: str,
    quantity: int,
    idempotency_key: str,
    occurred_at: datetime,
    channel_id: int | None = None,
    channel_kind: str = "",
    country: str = "",
    only_if_priced: bool = False,
    force: bool = False,
) -> bool:
    """Record one billable event once, priced as of `occurred_at`, and take its cost from the credit.
    Returns False when the key was already recorded (or, with only_if_priced, the meter is free).

    Runs in the caller's transaction (atomic blocks nest), so a rolled-back send records nothing; the
    usage row, the consumption entry and the balance change commit together under the account lock.
    A hold with the same key (credit_reserve) is captured: its amount counts as available, so a send
    that reserved is always recorded. Without a hold the cost must fit above the floor, else
    InsufficientCredits and nothing is written — unless `force` (an event that already happened and
    cannot be refused, e.g. an inbound message), which records it and may go below the floor.
    An event dated in a month whose invoice is already issued is recorded (and priced) as of now.
    """
    if quantity <= 0:
        raise ValueError("usage quantity must be positive; reverse usage with usage_refund")
    # Price first, without the account lock: most events are free (or unpriced inbound), and a free
    # event must not queue behind every other send and inbound message of the organization on the
    # account row. Only a priced event (or one with an open hold) takes the locked path.
    account, plan = _account_and_plan(organization_id)
    if plan is None and only_if_priced:
        return False  # no price book at all: nothing to record
    if _period_invoiced(organization_id, occurred_at):
        # That month is invoiced and frozen: a late event is billed in the open period instead.
        occurred_at = timezone.now()
    price = _plan_price(plan, meter=meter, at=occurred_at, channel_kind=channel_kind, country=country)
    if price is None and only_if_priced:
        return False
    unit_price, cost = _cost(price, quantity)
    usage_fields = dict(
        organization_id=organization_id,
        meter=meter,
        quantity=quantity,
        idempotency_key=idempotency_key,
        occurred_at=occurred_at,
        channel_id=channel_id,
        channel_kind=channel_kind,
        country=(country or "").upper(),
    )
    if cost <= 0 and not CreditHold.objects.filter(idempotency_key=idempotency_key, closed_at__isnull=True).exists():
        # Free, nothing held: no balance moves, and the usage row's unique idempotency key alone
        # makes it once (a concurrent call with the same key loses the insert and returns False).
        if account is None:
            account = credit_account_get_or_create(organization_id=organization_id)
        usage = _usage_row(**usage_fields, unit_price=unit_price, cost=cost, currency=account.currency, price=price)
        return usage is not None
    with transaction.atomic():
        account = _account_locked(organization_id)
        if UsageRecord.objects.filter(idempotency_key=idempotency_key).exists():
            return False
        plan = _plan_for(account)
        price = _plan_price(plan, meter=meter, at=occurred_at, channel_kind=channel_kind, country=country)
        if price is None and only_if_priced:
            return False
        unit_price, cost = _cost(price, quantity)
        released = _hold_close_locked(account, idempotency_key)
        if cost > 0 and not force and not released:
            _require_cover(account, cost)
        usage = _usage_row(**usage_fields, unit_price=unit_price, cost=cost, currency=account.currency, price=price)
        if usage is None:
            return False
        if cost > 0:
            _entry_write(
                account,
                kind=CreditEntry.Kind.CONSUMPTION,
                amount=-cost,
                idempotency_key=f"usage:{idempotency_key}",
                reference=idempotency_key,
                usage=usage,
            )
    return True


def usage_record_many(*, organization_id: int, events: list[dict], book: PriceBook | None = None) -> None:
    """usage_record for many events of one organization (a send batch), in the caller's transaction.

    Each event holds usage_record's keyword arguments but organization_id. The account, the plan, the
    open holds and the invoiced periods are read once, each price once (PriceBook); the free events
    with no open hold (most sends) are inserted in one statement, their unique keys making each once
    (ON CONFLICT DO NOTHING). Priced or held events go through usage_record one by one: they move the
    balance under the account lock exactly as a single call does. `book`: the caller's PriceBook of
    this organization, read moments ago (a send batch prices its claim with it)."""
    if not events:
        return
    if any(event["quantity"] <= 0 for event in events):
        raise ValueError("usage quantity must be positive; reverse usage with usage_refund")
    if book is None or book.organization_id != organization_id:
        book = price_book(organization_id=organization_id)
    keys = [event["idempotency_key"] for event in events]
    held = set(
        CreditHold.objects.filter(idempotency_key__in=keys, closed_at__isnull=True).values_list(
            "idempotency_key", flat=True
        )
    )
    invoiced: dict[date, bool] = {}
    now = timezone.now()
    rows = []
    for event in events:
        if book.plan is None and event.get("only_if_priced"):
            continue
        occurred_at = event["occurred_at"]
        day = occurred_at.date()
        if day not in invoiced:
            invoiced[day] = _period_invoiced(organization_id, occurred_at)
        if invoiced[day]:
            occurred_at = now
        country = event.get("country", "")
        channel_kind = event.get("channel_kind", "")
        price = book.price(meter=event["meter"], at=occurred_at, channel_kind=channel_kind, country=country)
        if price is None and event.get("only_if_priced"):
            continue
        unit_price, cost = _cost(price, event["quantity"])
        if cost > 0 or event["idempotency_key"] in held:
            usage_record(organization_id=organization_id, **event)
            continue
        rows.append(
            UsageRecord(
                organization_id=organization_id,
                meter=event["meter"],
                quantity=event["quantity"],
                idempotency_key=event["idempotency_key"],
                occurred_at=occurred_at,
                channel_id=event.get("channel_id"),
                channel_kind=channel_kind,
                country=(country or "").upper(),
                unit_price=unit_price,
                cost=cost,
                price=price,
            )
        )
    if rows:
        account = book.account or credit_account_get_or_create(organization_id=organization_id)
        for row in rows:
            row.currency = account.currency
        UsageRecord.objects.bulk_create(rows, ignore_conflicts=True)


def _period_invoiced(organization_id: int, at: datetime) -> bool:
    return Invoice.objects.filter(
        organization_id=organization_id,
        status=Invoice.Status.ISSUED,
        period_start__lte=at.date(),
        period_end__gte=at.date(),
    ).exists()


def _usage_row(**fields) -> UsageRecord | None:
    """Insert one usage row; None when its idempotency key is already recorded."""
    try:
        with transaction.atomic():
            return UsageRecord.objects.create(**fields)
    except IntegrityError:
        return None


def usage_refund(*, idempotency_key: str, reason: str) -> UsageRecord | None:
    """Reverse a recorded charge: a new usage row with negative quantity and cost (the original is never
    touched) and a refund entry giving the cost back. Idempotent: a second call returns the first
    reversal. Returns None when nothing was recorded under the key."""
    original = UsageRecord.objects.filter(idempotency_key=idempotency_key).first()
    if original is None:
        return None
    if original.reverses_id is not None:
        raise ValueError("a reversal cannot itself be refunded")
    with transaction.atomic():
        account = _account_locked(original.organization_id)
        existing = UsageRecord.objects.filter(reverses=original).first()
        if existing is not None:
            return existing
        reversal = UsageRecord.objects.create(
            organization_id=original.organization_id,
            meter=original.meter,
            quantity=-original.quantity,
            idempotency_key=f"refund:{idempotency_key}",
            occurred_at=timezone.now(),
            channel_id=original.channel_id,
            channel_kind=original.channel_kind,
            country=original.country,
            unit_price=original.unit_price,
            cost=-original.cost,
            currency=original.currency,
            price=original.price,
            reverses=original,
            reason=reason[:255],
        )
        if original.cost > 0:
            _entry_write(
                account,
                kind=CreditEntry.Kind.REFUND,
                amount=original.cost,
                idempotency_key=f"usage:refund:{idempotency_key}",
                reference=f"{idempotency_key}: {reason}",
                usage=reversal,
            )
    return reversal


# --- quotas ------------------------------------------------------------------------------------------
QUOTA_RESOURCES = {
    "channels": ("max_channels", "channels"),
    "agents": ("max_agents", "members"),
    "messages_per_day": ("max_messages_per_day", "outbound messages today"),
}


def quota_check(*, organization_id: int, resource: str, current: int | None = None, adding: int = 1) -> None:
    """Raise QuotaExceeded when adding `adding` more of `resource` would pass the plan's limit.

    resource: "channels" (the caller passes `current`: billing does not read channels), "agents"
    (members of any role) or "messages_per_day" (outbound usage rows since 00:00 UTC, unless `current`).
    """
    if resource not in QUOTA_RESOURCES:
        raise ValueError(f"unknown quota resource {resource!r}")
    _quota_check(organization_id, _account_and_plan(organization_id)[1], resource, current, adding)


def _quota_check(organization_id: int, plan: Plan | None, resource: str, current: int | None, adding: int) -> None:
    field_name, label = QUOTA_RESOURCES[resource]
    limit = getattr(plan, field_name) if plan else None
    if limit is None:
        return
    if current is None:
        if resource == "agents":
            current = Membership.objects.filter(organization_id=organization_id).count()
        elif resource == "messages_per_day":
            start = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            current = UsageRecord.objects.filter(
                organization_id=organization_id,
                meter__startswith=OUTBOUND_PREFIX,
                occurred_at__gte=start,
                reverses__isnull=True,
            ).count()
        else:
            raise ValueError("the channels quota needs the current count")
    if current + adding > limit:
        raise QuotaExceeded(
            f"Your plan {plan.name} allows {limit} {label}; you have {current}. Upgrade the plan to add more.",
            details={"resource": resource, "limit": limit, "current": current},
        )


# --- invoices ----------------------------------------------------------------------------------------
def month_bounds(month: date) -> tuple[datetime, datetime]:
    """[start, end) of a calendar month in UTC."""
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = datetime(month.year + (month.month == 12), month.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def invoice_build(*, organization_id: int, month: date) -> Invoice:
    """Create (or rebuild) the draft invoice of a month from the usage rows: one line per meter,
    channel kind and unit price (a price change mid-month gives two lines). Returns the issued one
    unchanged when it was issued already."""
    start, end = month_bounds(month)
    with transaction.atomic():
        account = credit_account_get_or_create(organization_id=organization_id)
        organization = Organization.objects.get(pk=organization_id)
        invoice, _ = Invoice.objects.select_for_update().get_or_create(
            organization_id=organization_id,
            period_start=start.date(),
            defaults={
                "period_end": (end - timedelta(days=1)).date(),
                "currency": account.currency,
                "bill_to": organization.name,
            },
        )
        if invoice.status == Invoice.Status.ISSUED:
            return invoice
        invoice.lines.all().delete()
        rows = (
            UsageRecord.objects.filter(
                organization_id=organization_id, occurred_at__gte=start, occurred_at__lt=end
            )
            .values("meter", "channel_kind", "unit_price")
            .annotate(quantity=Sum("quantity"), amount=Sum("cost"))
            .order_by("meter", "channel_kind", "unit_price")
        )
        lines = [
            InvoiceLine(
                invoice=invoice,
                meter=row["meter"],
                channel_kind=row["channel_kind"],
                unit_price=row["unit_price"],
                quantity=row["quantity"],
                amount=money(row["amount"]),
            )
            for row in rows
            if row["quantity"] or row["amount"]
        ]
        InvoiceLine.objects.bulk_create(lines)
        invoice.total = money(sum((line.amount for line in lines), ZERO))
        invoice.currency = account.currency
        invoice.bill_to = organization.name
        invoice.save()
    return invoice


def invoice_issue(*, invoice_id: int) -> Invoice:
    """Number and freeze a draft. Numbers are ALX-<year>-<000001>, gapless per year of issue: the
    year's sequence row is locked and advanced in the same transaction as the invoice."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if invoice.status == Invoice.Status.ISSUED:
            return invoice
        now = timezone.now()
        sequence, _ = InvoiceSequence.objects.select_for_update().get_or_create(year=now.year)
        sequence.last_number += 1
        sequence.save(update_fields=["last_number"])
        invoice.number = f"{INVOICE_PREFIX}-{now.year}-{sequence.last_number:06d}"
        invoice.status = Invoice.Status.ISSUED
        invoice.issued_at = now
        invoice.save()
    return invoice


def invoices_issue_for_month(*, month: date) -> list[Invoice]:
    """Build and issue the month's invoice of every organization that had usage in it (idempotent)."""
    start, end = month_bounds(month)
    organization_ids = (
        UsageRecord.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
        .values_list("organization_id", flat=True)
        .distinct()
        .order_by("organization_id")
    )
    issued = []
    for organization_id in list(organization_ids):
        invoice = invoice_build(organization_id=organization_id, month=month)
        issued.append(invoice_issue(invoice_id=invoice.pk))
    return issued


def previous_month(today: date | None = None) -> date:
    today = today or timezone.now().date()
    first = today.replace(day=1)
    return (first - timedelta(days=1)).replace(day=1)


# --- reconciliation ----------------------------------------------------------------------------------
@dataclass
class ReconcileReport:
    """Messages accepted by the platforms versus usage rows, keyed by usage idempotency key."""

    expected: int = 0
    metered: int = 0
    missing: list[str] = field(default_factory=list)  # accepted, not metered
    unexpected: list[str] = field(default_factory=list)  # metered, no accepted message
    quantity_mismatch: list[tuple[str, int, int]] = field(default_factory=list)  # key, expected, metered
    refunded: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.quantity_mismatch)


def usage_reconcile(
    *,
    organization_id: int,
    month: date,
    expected: dict[str, int],
    key_prefix: str = "msg:",
    meter_prefix: str = OUTBOUND_PREFIX,
) -> ReconcileReport:
    """Compare the caller's accepted events (usage key -> quantity, e.g. {"msg:12": 2}) with the usage
    rows of the month. Rows recorded just outside the month for an expected key count (a send that
    straddles midnight); a refunded key is reported apart, not as a mismatch."""
    start, end = month_bounds(month)
    rows = UsageRecord.objects.filter(organization_id=organization_id, reverses__isnull=True)
    in_month = rows.filter(
        occurred_at__gte=start,
        occurred_at__lt=end,
        idempotency_key__startswith=key_prefix,
        meter__startswith=meter_prefix,
    )
    keys = set(in_month.values_list("idempotency_key", flat=True)) | set(expected)
    metered = dict(rows.filter(idempotency_key__in=keys).values_list("idempotency_key", "quantity"))
    refunded = set(
        UsageRecord.objects.filter(reverses__idempotency_key__in=keys).values_list(
            "reverses__idempotency_key", flat=True
        )
    )
    report = ReconcileReport(expected=len(expected), metered=len(metered), refunded=sorted(refunded))
    for key in sorted(keys - refunded):
        want, got = expected.get(key), metered.get(key)
        if want is None:
            report.unexpected.append(key)
        elif got is None:
            report.missing.append(key)
        elif want != got:
            report.quantity_mismatch.append((key, want, got))
    return report


# --- Stripe ------------------------------------------------------------------------------------------
def _stripe_client() -> stripe.StripeClient:
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": settings.STRIPE_API_BASE},
        max_network_retries=2,
    )


ZERO_DECIMAL_CURRENCIES = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)


def _minor_units(amount: Decimal, currency: str) -> int:
    """Stripe amounts are integers in the currency's smallest unit (cents; yen are whole)."""
    factor = 1 if currency.upper() in ZERO_DECIMAL_CURRENCIES else 100
    return int((amount * factor).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def _from_minor_units(value: int, currency: str) -> Decimal:
    factor = 1 if currency.upper() in ZERO_DECIMAL_CURRENCIES else 100
    return money(Decimal(value) / factor)


def checkout_create(
    *, organization_id: int, amount: Decimal, success_url: str, cancel_url: str, created_by=None
) -> CheckoutSession:
    """Open a Stripe Checkout session buying `amount` of credit. Calls Stripe outside any transaction.
    Raises ValueError for an amount outside BILLING_TOPUP_MIN..MAX, CheckoutError when Stripe fails."""
    amount = money(amount)
    low = Decimal(str(getattr(settings, "BILLING_TOPUP_MIN", "5")))
    high = Decimal(str(getattr(settings, "BILLING_TOPUP_MAX", "10000")))
    if not low <= amount <= high:
        raise ValueError(f"The amount must be between {low} and {high}.")
    account = credit_account_get_or_create(organization_id=organization_id)
    currency = account.currency
    organization = Organization.objects.get(pk=organization_id)
    try:
        session = _stripe_client().v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "success_url": success_url,
                "cancel_url": cancel_url,
                "client_reference_id": str(organization_id),
                "metadata": {"organization_id": str(organization_id), "purpose": "alexia_credit_topup"},
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": currency.lower(),
                            "unit_amount": _minor_units(amount, currency),
                            "product_data": {"name": f"Alexia credit for {organization.name}"},
                        },
                    }
                ],
            }
        )
    except stripe.StripeError as exc:
        raise CheckoutError(f"Stripe could not start the checkout: {exc.user_message or exc}") from exc
    return CheckoutSession.objects.create(
        organization_id=organization_id,
        stripe_session_id=session.id,
        amount=amount,
        currency=currency,
        url=session.url or "",
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
    )


def stripe_webhook_receive(*, payload: bytes, signature: str) -> StripeEvent:
    """Verify a Stripe webhook (stripe.Webhook.construct_event: HMAC-SHA256 over "t.payload", 5-minute
    tolerance), store the event once and apply it. Raises WebhookVerificationError on a bad signature.

    Applying is one short transaction on our own tables, so it runs here rather than in a task: Stripe
    retries until it gets a 2xx, and the grant is idempotent on the session id.
    """
    try:
        event = stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET)
    except (ValueError, stripe.SignatureVerificationError) as exc:
        raise WebhookVerificationError(f"Stripe signature verification failed: {exc}") from exc
    data = event.to_dict()
    with transaction.atomic():
        record, _ = StripeEvent.objects.get_or_create(
            event_id=data["id"], defaults={"type": data.get("type", ""), "payload": data}
        )
        record = StripeEvent.objects.select_for_update().get(pk=record.pk)
        if record.processed_at is not None:
            return record
        if record.type in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
            obj = data["data"]["object"]
            if obj.get("payment_status") == "paid":
                checkout_complete(
                    stripe_session_id=obj["id"],
                    amount_total=int(obj["amount_total"]),
                    currency=obj["currency"],
                )
        elif record.type == "checkout.session.expired":
            CheckoutSession.objects.filter(
                stripe_session_id=data["data"]["object"]["id"], status=CheckoutSession.Status.OPEN
            ).update(status=CheckoutSession.Status.EXPIRED)
        record.processed_at = timezone.now()
        record.save(update_fields=["processed_at"])
    return record


def checkout_complete(*, stripe_session_id: str, amount_total: int, currency: str) -> CreditEntry | None:
    """Grant a paid session's credit exactly once (the entry's key is the session id). Returns None for a
    session we did not open (another integration on the same Stripe account)."""
    with transaction.atomic():
        session = (
            CheckoutSession.objects.select_for_update().filter(stripe_session_id=stripe_session_id).first()
        )
        if session is None:
            logger.warning("Stripe session %s is not one of ours; ignored", stripe_session_id)
            return None
        paid = _from_minor_units(amount_total, currency)
        if currency.upper() != session.currency or paid != session.amount:
            logger.warning(
                "Stripe session %s paid %s %s, opened for %s %s: crediting what was paid",
                stripe_session_id,
                paid,
                currency,
                session.amount,
                session.currency,
            )
        entry, _ = credit_add(
            organization_id=session.organization_id,
            amount=paid,
            kind=CreditEntry.Kind.PURCHASE,
            idempotency_key=f"stripe:{stripe_session_id}",
            reference=f"Stripe Checkout {stripe_session_id}",
        )
        if session.status != CheckoutSession.Status.COMPLETED:
            session.status = CheckoutSession.Status.COMPLETED
            session.completed_at = timezone.now()
            session.save(update_fields=["status", "completed_at"])
    return entry
