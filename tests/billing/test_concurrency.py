"""Parallel workers consuming the last credits, on PostgreSQL, each thread with its own connection."""

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from billing import services
from billing.errors import InsufficientCredits
from billing.models import CreditAccount, CreditEntry, UsageRecord

from .conftest import fund

WORKERS = 16


def run_parallel(fn, n: int = WORKERS) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def target(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("overdraft", [Decimal("0"), Decimal("0.12")])
def test_parallel_usage_never_goes_below_the_floor(org, plan, prices, overdraft):
    plan.overdraft = overdraft
    plan.save()
    fund(org.pk, "0.50")  # 10 SMS at 0.05

    def send(i: int):
        return services.usage_record(
            organization_id=org.pk,
            meter="message.out.twilio_sms",
            quantity=1,
            idempotency_key=f"msg:{i}",
            occurred_at=services.month_bounds(services.previous_month())[0],
            channel_kind="twilio_sms",
        )

    results = run_parallel(send)
    accepted = [r for r in results if r is True]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    assert len(accepted) + len(refused) == WORKERS, results
    expected = int((Decimal("0.50") + overdraft) / Decimal("0.05"))
    assert len(accepted) == expected
    account = CreditAccount.objects.get(organization=org)
    assert account.balance >= -overdraft
    assert account.balance == Decimal("0.50") - Decimal("0.05") * expected
    assert CreditEntry.objects.filter(account=account).aggregate(s=Sum("amount"))["s"] == account.balance
    assert UsageRecord.objects.filter(organization=org).count() == expected


@pytest.mark.django_db(transaction=True)
def test_parallel_reservations_and_captures(org, prices):
    fund(org.pk, "0.30")  # 6 holds of 0.05

    def reserve_then_capture(i: int):
        key = f"msg:{i}"
        services.credit_reserve(
            organization_id=org.pk, meter="message.out.twilio_sms", quantity=1, idempotency_key=key,
            channel_kind="twilio_sms",
        )
        return services.usage_record(
            organization_id=org.pk, meter="message.out.twilio_sms", quantity=1, idempotency_key=key,
            occurred_at=services.month_bounds(services.previous_month())[0], channel_kind="twilio_sms",
        )

    results = run_parallel(reserve_then_capture)
    assert sum(1 for r in results if r is True) == 6
    assert all(r is True or isinstance(r, InsufficientCredits) for r in results), results
    account = CreditAccount.objects.get(organization=org)
    assert (account.balance, account.held) == (Decimal("0"), Decimal("0"))


@pytest.mark.django_db(transaction=True)
def test_the_same_event_from_parallel_workers_is_charged_once(org, prices):
    fund(org.pk, "1")

    def same(_i: int):
        return services.usage_record(
            organization_id=org.pk, meter="message.out.twilio_sms", quantity=2, idempotency_key="msg:dup",
            occurred_at=services.month_bounds(services.previous_month())[0], channel_kind="twilio_sms",
        )

    results = run_parallel(same, n=8)
    assert results.count(True) == 1 and results.count(False) == 7, results
    assert CreditAccount.objects.get(organization=org).balance == Decimal("0.90")
