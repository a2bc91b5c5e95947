"""The default plan is kept per process for BILLING_PLAN_CACHE_SECONDS; saving or deleting a Plan in the
process drops it at once (other processes follow within the TTL)."""

from django.utils import timezone

from billing.models import Plan, UsageRecord
from billing.services import plan_default, plan_default_forget, usage_record


def test_default_plan_cached_and_dropped_on_save_and_delete(db, settings):
    settings.BILLING_PLAN_CACHE_SECONDS = 60
    plan_default_forget()
    assert plan_default() is None
    plan = Plan.objects.create(code="std", name="Standard", currency="EUR", is_default=True)
    assert plan_default() == plan  # post_save dropped the cached "no default plan"
    Plan.objects.filter(pk=plan.pk).update(name="Renamed")  # no signal: the cached copy stays
    assert plan_default().name == "Standard"
    plan.delete()
    assert plan_default() is None
    plan_default_forget()


def test_unpriced_inbound_with_no_price_book_records_nothing(db, org, django_assert_max_num_queries):
    # Every inbound message asks to be metered "only if priced": with no plan at all that costs one read.
    with django_assert_max_num_queries(2):
        recorded = usage_record(
            organization_id=org.pk, meter="message.in.whatsapp_cloud", quantity=1, idempotency_key="msg:1",
            occurred_at=timezone.now(), only_if_priced=True, force=True,
        )
    assert recorded is False
    assert not UsageRecord.objects.exists()
