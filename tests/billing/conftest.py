from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import services
from billing.models import Plan, Price
from billing.stripe_fake import FakeStripe

WEBHOOK_SECRET = "whsec_test_alexia_secret"


@pytest.fixture(autouse=True)
def _billing_settings(settings):
    settings.ROOT_URLCONF = "tests.billing.urls"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.STRIPE_SECRET_KEY = "sk_test_alexia"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens: tests that call Stripe start the fake


@pytest.fixture
def fake_stripe(settings):
    with FakeStripe(secret_key="sk_test_alexia") as fake:
        settings.STRIPE_API_BASE = fake.base_url
        yield fake


@pytest.fixture
def plan(db):
    return Plan.objects.create(code="standard", name="Standard", currency="EUR", is_default=True)


def add_price(plan, meter, unit_price, *, channel_kind="", country="", since=None):
    return Price.objects.create(
        plan=plan,
        meter=meter,
        channel_kind=channel_kind,
        country=country,
        unit_price=Decimal(unit_price),
        currency=plan.currency,
        effective_from=since or timezone.now() - timedelta(days=365),
    )


@pytest.fixture
def prices(plan):
    """SMS 0.05 per segment (0.08 to Germany), WhatsApp marketing 0.10, utility 0.04, Telegram free."""
    return {
        "sms": add_price(plan, "message.out.twilio_sms", "0.05", channel_kind="twilio_sms"),
        "sms_de": add_price(plan, "message.out.twilio_sms", "0.08", channel_kind="twilio_sms", country="DE"),
        "wa_marketing": add_price(plan, "message.out.whatsapp_cloud.marketing", "0.10"),
        "wa_utility": add_price(plan, "message.out.whatsapp_cloud.utility", "0.04"),
    }


def fund(organization_id: int, amount: str, key: str = "fund") -> None:
    services.credit_add(
        organization_id=organization_id, amount=Decimal(amount), kind="grant", idempotency_key=f"{key}:{organization_id}"
    )


def record(organization_id: int, key: str, *, meter="message.out.twilio_sms", quantity=1, kind="twilio_sms", **kw):
    return services.usage_record(
        organization_id=organization_id,
        meter=meter,
        quantity=quantity,
        idempotency_key=key,
        occurred_at=kw.pop("occurred_at", timezone.now()),
        channel_id=kw.pop("channel_id", None),
        channel_kind=kind,
        **kw,
    )


# The real-worker machinery of the pipeline tests, for the end-to-end reconciliation.
from ..pipeline.conftest import worker, worker_env  # noqa: E402, F401
