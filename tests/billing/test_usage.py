from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, transaction
from django.utils import timezone

from billing import services
from billing.errors import InsufficientCredits
from billing.meters import country_for_address, message_meter
from billing.models import CreditAccount, CreditEntry, ImmutableError, UsageRecord

from .conftest import add_price, fund, record


def balance(org) -> Decimal:
    return CreditAccount.objects.get(organization=org).balance


def test_meters_follow_meta_categories_and_countries():
    assert message_meter(channel_kind="twilio_sms") == "message.out.twilio_sms"
    assert message_meter(channel_kind="whatsapp_cloud", category="Utility") == "message.out.whatsapp_cloud.utility"
    assert message_meter(channel_kind="whatsapp_cloud") == "message.out.whatsapp_cloud.service"
    assert message_meter(channel_kind="whatsapp_cloud", category="promo") == "message.out.whatsapp_cloud.marketing"
    assert message_meter(channel_kind="telegram", direction="in") == "message.in.telegram"
    assert country_for_address("+4915112345678") == "DE"
    assert country_for_address("whatsapp:+14155238886") == "US"
    assert country_for_address("someone@example.com") == ""


def test_usage_is_priced_once_and_consumes_credit(org, prices):
    fund(org.pk, "10")
    assert record(org.pk, "msg:1", quantity=3) is True
    assert record(org.pk, "msg:1", quantity=3) is False  # retry, duplicate status, replay: once
    usage = UsageRecord.objects.get(idempotency_key="msg:1")
    assert (usage.unit_price, usage.cost, usage.currency) == (Decimal("0.05"), Decimal("0.15"), "EUR")
    assert balance(org) == Decimal("9.85")
    entry = CreditEntry.objects.get(usage=usage)
    assert (entry.kind, entry.amount, entry.balance_after) == ("consumption", Decimal("-0.15"), Decimal("9.85"))


def test_most_specific_price_wins_country_then_any(org, prices):
    fund(org.pk, "10")
    record(org.pk, "msg:de", country="DE")
    record(org.pk, "msg:fr", country="FR")
    assert UsageRecord.objects.get(idempotency_key="msg:de").unit_price == Decimal("0.08")
    assert UsageRecord.objects.get(idempotency_key="msg:fr").unit_price == Decimal("0.05")


def test_whatsapp_service_replies_are_free_unless_priced(org, plan, prices):
    record(org.pk, "msg:svc", meter="message.out.whatsapp_cloud.service", kind="whatsapp_cloud")
    usage = UsageRecord.objects.get(idempotency_key="msg:svc")
    assert usage.cost == 0 and usage.price is None
    add_price(plan, "message.out.whatsapp_cloud.service", "0.01")
    fund(org.pk, "1")
    record(org.pk, "msg:svc2", meter="message.out.whatsapp_cloud.service", kind="whatsapp_cloud")
    assert UsageRecord.objects.get(idempotency_key="msg:svc2").cost == Decimal("0.01")


def test_price_change_applies_from_its_date_and_never_rewrites_the_past(org, plan, prices):
    fund(org.pk, "10")
    now = timezone.now()
    new = add_price(plan, "message.out.twilio_sms", "0.07", channel_kind="twilio_sms", since=now + timedelta(days=1))
    record(org.pk, "msg:today", occurred_at=now)
    record(org.pk, "msg:tomorrow", occurred_at=now + timedelta(days=2))
    assert UsageRecord.objects.get(idempotency_key="msg:today").unit_price == Decimal("0.05")
    tomorrow = UsageRecord.objects.get(idempotency_key="msg:tomorrow")
    assert (tomorrow.unit_price, tomorrow.price_id) == (Decimal("0.07"), new.pk)
    assert UsageRecord.objects.get(idempotency_key="msg:today").cost == Decimal("0.05")


def test_inbound_metered_only_where_priced(org, plan):
    assert record(org.pk, "in:1", meter="message.in.telegram", kind="telegram", only_if_priced=True) is False
    add_price(plan, "message.in.telegram", "0.001")
    assert record(org.pk, "in:2", meter="message.in.telegram", kind="telegram", only_if_priced=True, force=True)
    # Inbound keeps flowing with no credit at all: force records it below the floor.
    assert balance(org) == Decimal("-0.0010")


def test_usage_without_cover_is_refused_and_writes_nothing(org, prices):
    fund(org.pk, "0.10")
    record(org.pk, "msg:a", quantity=2)
    with pytest.raises(InsufficientCredits) as exc:
        record(org.pk, "msg:b")
    assert exc.value.code == "insufficient_credits"
    assert not UsageRecord.objects.filter(idempotency_key="msg:b").exists()
    assert balance(org) == 0


def test_reserved_send_is_always_recorded_and_hold_is_captured(org, prices):
    fund(org.pk, "0.05")
    held = services.credit_reserve(
        organization_id=org.pk, meter="message.out.twilio_sms", quantity=1, idempotency_key="msg:h", channel_kind="twilio_sms"
    )
    assert held == Decimal("0.05")
    with pytest.raises(InsufficientCredits):  # the held credit is not available to anyone else
        services.credit_reserve(
            organization_id=org.pk, meter="message.out.twilio_sms", quantity=1, idempotency_key="msg:other",
            channel_kind="twilio_sms",
        )
    assert record(org.pk, "msg:h") is True
    account = CreditAccount.objects.get(organization=org)
    assert (account.balance, account.held) == (Decimal("0"), Decimal("0"))


def test_release_gives_the_hold_back(org, prices):
    fund(org.pk, "0.05")
    services.credit_reserve(
        organization_id=org.pk, meter="message.out.twilio_sms", quantity=1, idempotency_key="msg:f", channel_kind="twilio_sms"
    )
    assert services.credit_release(organization_id=org.pk, idempotency_key="msg:f") == Decimal("0.05")
    assert services.credit_release(organization_id=org.pk, idempotency_key="msg:f") == 0
    assert CreditAccount.objects.get(organization=org).held == 0


def test_refund_reverses_with_a_new_row_once(org, prices):
    fund(org.pk, "1")
    record(org.pk, "msg:r", quantity=2)
    reversal = services.usage_refund(idempotency_key="msg:r", reason="platform rejected after accept")
    again = services.usage_refund(idempotency_key="msg:r", reason="again")
    assert again.pk == reversal.pk
    assert (reversal.quantity, reversal.cost) == (-2, Decimal("-0.10"))
    assert balance(org) == Decimal("1")
    assert services.usage_refund(idempotency_key="msg:unknown", reason="x") is None
    kinds = list(CreditEntry.objects.filter(organization=org).order_by("id").values_list("kind", flat=True))
    assert kinds == ["grant", "consumption", "refund"]


def test_usage_rows_are_append_only(org, prices):
    fund(org.pk, "1")
    record(org.pk, "msg:x")
    usage = UsageRecord.objects.get(idempotency_key="msg:x")
    usage.quantity = 5
    with pytest.raises(ImmutableError):
        usage.save()
    with pytest.raises(DatabaseError), transaction.atomic():
        UsageRecord.objects.filter(pk=usage.pk).update(quantity=5)
    assert UsageRecord.objects.get(pk=usage.pk).quantity == 1


def _event(key, *, meter="message.out.twilio_sms", kind="twilio_sms", at=None, **kw):
    return dict(
        meter=meter, quantity=kw.pop("quantity", 1), idempotency_key=key, occurred_at=at or timezone.now(),
        channel_kind=kind, **kw,
    )  # fmt: skip


def test_usage_record_many_prices_each_event_as_usage_record_would(org, plan, prices):
    fund(org.pk, "10")
    now = timezone.now()
    later = add_price(plan, "message.out.twilio_sms", "0.07", channel_kind="twilio_sms", since=now + timedelta(days=1))
    services.usage_record_many(
        organization_id=org.pk,
        events=[
            _event("b:tg1", meter="message.out.telegram", kind="telegram"),
            _event("b:tg2", meter="message.out.telegram", kind="telegram"),
            _event("b:sms", quantity=2),
            _event("b:sms-de", country="DE"),
            _event("b:sms-later", at=now + timedelta(days=2)),
            _event("b:in", meter="message.in.telegram", kind="telegram", only_if_priced=True),
        ],
    )
    rows = {u.idempotency_key: u for u in UsageRecord.objects.filter(organization=org)}
    assert set(rows) == {"b:tg1", "b:tg2", "b:sms", "b:sms-de", "b:sms-later"}  # unpriced inbound: nothing
    assert rows["b:tg1"].cost == 0 and rows["b:tg1"].currency == "EUR" and rows["b:tg1"].price is None
    assert rows["b:sms"].cost == Decimal("0.10")
    assert rows["b:sms-de"].unit_price == Decimal("0.08")
    assert rows["b:sms-later"].price_id == later.pk
    assert balance(org) == Decimal("10") - Decimal("0.10") - Decimal("0.08") - Decimal("0.07")


def test_usage_record_many_records_each_key_once_and_captures_holds(org, prices):
    fund(org.pk, "1")
    held = services.credit_reserve(
        organization_id=org.pk, meter="message.out.twilio_sms", quantity=1, idempotency_key="b:h",
        channel_kind="twilio_sms",
    )  # fmt: skip
    assert held == Decimal("0.05")
    events = [_event("b:h"), _event("b:free", meter="message.out.telegram", kind="telegram")]
    services.usage_record_many(organization_id=org.pk, events=events)
    services.usage_record_many(organization_id=org.pk, events=events)  # a replayed batch
    assert UsageRecord.objects.filter(idempotency_key__in=["b:h", "b:free"]).count() == 2
    account = CreditAccount.objects.get(organization=org)
    assert (account.balance, account.held) == (Decimal("0.95"), Decimal("0"))


def test_usage_record_many_refuses_a_non_positive_quantity(org, prices):
    with pytest.raises(ValueError):
        services.usage_record_many(organization_id=org.pk, events=[_event("b:zero", quantity=0)])
    assert not UsageRecord.objects.filter(idempotency_key="b:zero").exists()
