from datetime import date, datetime
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import DatabaseError, transaction
from django.db.models import Sum

from billing import services
from billing.models import ImmutableError, Invoice, InvoiceLine, InvoiceSequence, UsageRecord

from ..factories import OrganizationFactory
from .conftest import add_price, fund, record

MARCH = date(2026, 3, 1)


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=services.UTC)


@pytest.fixture
def march_usage(org, plan, prices):
    fund(org.pk, "100")
    add_price(plan, "message.out.twilio_sms", "0.06", channel_kind="twilio_sms", since=at(15, 0))
    record(org.pk, "msg:1", quantity=2, occurred_at=at(2))
    record(org.pk, "msg:2", quantity=1, occurred_at=at(20))  # after the price change
    record(org.pk, "msg:3", meter="message.out.whatsapp_cloud.marketing", kind="whatsapp_cloud", occurred_at=at(5))
    record(org.pk, "msg:4", meter="message.out.whatsapp_cloud.marketing", kind="whatsapp_cloud", occurred_at=at(6))
    services.usage_refund(idempotency_key="msg:4", reason="rejected")
    record(org.pk, "msg:5", meter="message.out.telegram", kind="telegram", occurred_at=at(7))
    record(org.pk, "msg:apr", quantity=1, occurred_at=datetime(2026, 4, 1, 0, 0, tzinfo=services.UTC))
    return org


def test_lines_per_meter_channel_kind_and_price_and_total_equals_usage(march_usage):
    invoice = services.invoice_issue(invoice_id=services.invoice_build(organization_id=march_usage.pk, month=MARCH).pk)
    lines = {(line.meter, line.unit_price): (line.quantity, line.amount) for line in invoice.lines.all()}
    assert lines[("message.out.twilio_sms", Decimal("0.05"))] == (2, Decimal("0.10"))
    assert lines[("message.out.twilio_sms", Decimal("0.06"))] == (1, Decimal("0.06"))
    assert lines[("message.out.telegram", Decimal("0"))] == (1, Decimal("0"))
    # msg:3 counted, msg:4 charged then refunded in March (the reversal is dated when it was made).
    march_cost = UsageRecord.objects.filter(
        organization=march_usage, occurred_at__gte=at(1, 0), occurred_at__lt=datetime(2026, 4, 1, tzinfo=services.UTC)
    ).aggregate(s=Sum("cost"))["s"]
    assert invoice.total == march_cost
    assert invoice.period_end == date(2026, 3, 31)
    assert invoice.number.startswith(f"ALX-{invoice.issued_at.year}-")


def test_numbers_are_gapless_per_year(march_usage, other_org, prices):
    third = OrganizationFactory()
    fund(other_org.pk, "1")
    fund(third.pk, "1")
    record(other_org.pk, "o:1", occurred_at=at(3))
    record(third.pk, "t:1", occurred_at=at(3))
    issued = services.invoices_issue_for_month(month=MARCH)
    again = services.invoices_issue_for_month(month=MARCH)
    numbers = [i.number for i in issued]
    year = issued[0].issued_at.year
    assert numbers == [f"ALX-{year}-{n:06d}" for n in (1, 2, 3)]
    assert [i.number for i in again] == numbers
    assert InvoiceSequence.objects.get(year=year).last_number == 3


def test_issued_invoice_is_immutable_in_save_and_in_the_database(march_usage):
    invoice = services.invoice_issue(invoice_id=services.invoice_build(organization_id=march_usage.pk, month=MARCH).pk)
    total = invoice.total
    invoice.total = Decimal("0")
    with pytest.raises(ImmutableError):
        invoice.save()
    with pytest.raises(ImmutableError):
        invoice.delete()
    with pytest.raises(DatabaseError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(total=Decimal("0"))
    with pytest.raises(DatabaseError), transaction.atomic():
        InvoiceLine.objects.filter(invoice=invoice).update(amount=Decimal("0"))
    with pytest.raises(DatabaseError), transaction.atomic():
        InvoiceLine.objects.bulk_create(
            [InvoiceLine(invoice=invoice, meter="x", unit_price=1, quantity=1, amount=Decimal("1"))]
        )
    with pytest.raises(DatabaseError), transaction.atomic():
        InvoiceLine.objects.filter(invoice=invoice).delete()
    line = invoice.lines.first()
    line.amount = Decimal("0")
    with pytest.raises(ImmutableError):
        line.save()
    # A late event dated in the issued month is billed in the open period; rebuilding changes nothing.
    record(march_usage.pk, "msg:late", occurred_at=at(30))
    assert UsageRecord.objects.get(idempotency_key="msg:late").occurred_at > at(31, 23)
    rebuilt = services.invoice_build(organization_id=march_usage.pk, month=MARCH)
    assert rebuilt.pk == invoice.pk and Invoice.objects.get(pk=invoice.pk).total == total


def test_draft_can_be_rebuilt_until_issued(march_usage):
    draft = services.invoice_build(organization_id=march_usage.pk, month=MARCH)
    before = draft.total
    record(march_usage.pk, "msg:late", occurred_at=at(31, 23))
    draft = services.invoice_build(organization_id=march_usage.pk, month=MARCH)
    assert draft.total == before + Decimal("0.06") and draft.status == "draft" and draft.number is None


def test_issue_command(march_usage, capsys):
    call_command("billing_issue_invoices", "--month", "2026-03")
    out = capsys.readouterr().out
    assert out.startswith("ALX-") and str(march_usage.pk) in out
    assert Invoice.objects.filter(organization=march_usage, status="issued").count() == 1
    call_command("billing_issue_invoices", "--month", "2026-03", "--org", march_usage.slug)
    assert Invoice.objects.filter(organization=march_usage).count() == 1
