from decimal import Decimal

import pytest
from django.core import mail
from django.db import DatabaseError, transaction
from django.db.models import Sum

from billing import selectors, services
from billing.errors import InsufficientCredits, QuotaExceeded
from billing.models import CreditAccount, CreditEntry, Plan
from organizations.models import Role

from ..factories import MembershipFactory, UserFactory
from .conftest import fund, record


def assert_ledger_consistent(org):
    account = CreditAccount.objects.get(organization=org)
    total = CreditEntry.objects.filter(account=account).aggregate(s=Sum("amount"))["s"] or Decimal("0")
    assert account.balance == total
    last = CreditEntry.objects.filter(account=account).order_by("-id").first()
    if last is not None:
        assert last.balance_after == account.balance


def test_every_kind_of_movement_keeps_balance_equal_to_the_ledger(org, prices):
    fund(org.pk, "5")
    services.credit_add(organization_id=org.pk, amount=Decimal("12.5"), kind="purchase", idempotency_key="stripe:cs_1")
    record(org.pk, "msg:1", quantity=4)
    services.usage_refund(idempotency_key="msg:1", reason="test")
    services.credit_add(organization_id=org.pk, amount=Decimal("-2"), kind="adjustment", idempotency_key="adj:1")
    services.credit_consume(organization_id=org.pk, amount=Decimal("0.5"), idempotency_key="other:1")
    assert CreditAccount.objects.get(organization=org).balance == Decimal("15.0")
    assert_ledger_consistent(org)


def test_repeated_keys_add_nothing(org):
    first, created = services.credit_add(organization_id=org.pk, amount=Decimal("3"), idempotency_key="grant:x")
    again, created_again = services.credit_add(organization_id=org.pk, amount=Decimal("3"), idempotency_key="grant:x")
    assert created and not created_again and first.pk == again.pk
    assert CreditAccount.objects.get(organization=org).balance == Decimal("3")


def test_overdraft_is_the_floor(org, plan, prices):
    plan.overdraft = Decimal("0.10")
    plan.save()
    record(org.pk, "msg:1")
    record(org.pk, "msg:2")
    with pytest.raises(InsufficientCredits):
        record(org.pk, "msg:3")
    assert CreditAccount.objects.get(organization=org).balance == Decimal("-0.10")
    with pytest.raises(InsufficientCredits):
        services.credit_add(organization_id=org.pk, amount=Decimal("-1"), kind="adjustment", idempotency_key="adj")


def test_entries_are_append_only_in_the_database(org):
    fund(org.pk, "1")
    with pytest.raises(DatabaseError), transaction.atomic():
        CreditEntry.objects.filter(organization=org).update(amount=Decimal("100"))


def test_credit_check_uses_the_cheapest_send(org, prices):
    services.credit_check(organization_id=org.pk, channel_kind="telegram")  # no price: free, passes
    with pytest.raises(InsufficientCredits) as exc:
        services.credit_check(organization_id=org.pk, channel_kind="twilio_sms")
    assert exc.value.status_code == 402
    with pytest.raises(InsufficientCredits):
        services.credit_check(organization_id=org.pk, channel_kind="whatsapp_cloud")
    fund(org.pk, "0.04")
    services.credit_check(organization_id=org.pk, channel_kind="whatsapp_cloud")  # a utility template fits
    with pytest.raises(InsufficientCredits):
        services.credit_check(
            organization_id=org.pk, channel_kind="whatsapp_cloud", meter_hint="message.out.whatsapp_cloud.marketing"
        )


def test_low_balance_alert_once_per_crossing_to_owners(org, owner, agent, prices, django_capture_on_commit_callbacks):
    fund(org.pk, "1")
    services.credit_settings_update(organization_id=org.pk, low_balance_threshold=Decimal("0.90"))
    with django_capture_on_commit_callbacks(execute=True):
        record(org.pk, "msg:1", quantity=2)  # 0.90: not below
    assert mail.outbox == []
    for i in range(2, 5):
        with django_capture_on_commit_callbacks(execute=True):
            record(org.pk, f"msg:{i}")  # 0.85, 0.80, 0.75: one crossing
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["owner@acme.test"]  # owners only, not the agent
    assert "0.8500" in mail.outbox[0].subject
    assert selectors.billing_banner(organization_id=org.pk)["code"] == "low_balance"
    with django_capture_on_commit_callbacks(execute=True):
        fund(org.pk, "5", key="topup")  # back above: re-armed
    assert selectors.billing_banner(organization_id=org.pk) is None
    with django_capture_on_commit_callbacks(execute=True):
        services.credit_consume(organization_id=org.pk, amount=Decimal("5"), idempotency_key="big")
    assert len(mail.outbox) == 2


def test_banner_when_out_of_credit(org, prices):
    assert selectors.billing_banner(organization_id=org.pk) is None
    fund(org.pk, "0.05")
    record(org.pk, "msg:1")
    banner = selectors.billing_banner(organization_id=org.pk)
    assert banner["level"] == "error" and banner["code"] == "insufficient_credits"


def test_quotas(org, plan, owner, agent):
    plan.max_agents = 2
    plan.max_channels = 1
    plan.max_messages_per_day = 2
    plan.save()
    services.quota_check(organization_id=org.pk, resource="channels", current=0)
    with pytest.raises(QuotaExceeded) as exc:
        services.quota_check(organization_id=org.pk, resource="channels", current=1)
    assert "allows 1 channels" in exc.value.message and exc.value.code == "quota_exceeded"
    with pytest.raises(QuotaExceeded):
        services.quota_check(organization_id=org.pk, resource="agents")
    record(org.pk, "msg:1", meter="message.out.telegram", kind="telegram")
    services.quota_check(organization_id=org.pk, resource="messages_per_day")
    record(org.pk, "msg:2", meter="message.out.telegram", kind="telegram")
    with pytest.raises(QuotaExceeded):
        services.quota_check(organization_id=org.pk, resource="messages_per_day")
    unlimited = Plan.objects.create(code="big", name="Big")
    CreditAccount.objects.filter(organization=org).update(plan=unlimited)
    services.quota_check(organization_id=org.pk, resource="agents")
    MembershipFactory(organization=org, user=UserFactory(), role=Role.AGENT)
    services.quota_check(organization_id=org.pk, resource="messages_per_day")
