import json
import time
from decimal import Decimal

import pytest
from django.test import Client

from billing import services
from billing.errors import CheckoutError
from billing.models import CheckoutSession, CreditAccount, CreditEntry, StripeEvent
from billing.stripe_fake import FakeStripe

from .conftest import WEBHOOK_SECRET

WEBHOOK_URL = "/billing/stripe/webhook/"


def post_event(body: bytes, header: str | None):
    headers = {"HTTP_STRIPE_SIGNATURE": header} if header is not None else {}
    return Client().post(WEBHOOK_URL, data=body, content_type="application/json", **headers)


@pytest.fixture
def session(org, plan, fake_stripe):
    return services.checkout_create(
        organization_id=org.pk,
        amount=Decimal("50"),
        success_url="http://testserver/billing/?checkout=success",
        cancel_url="http://testserver/billing/?checkout=cancelled",
    )


def test_checkout_goes_to_stripe_with_the_library(session, fake_stripe, org):
    request = fake_stripe.received("/v1/checkout/sessions", method="POST")[0]
    assert request.headers["Authorization"] == "Bearer sk_test_alexia"
    form = request.form
    assert form["line_items[0][price_data][unit_amount]"] == ["5000"]
    assert form["line_items[0][price_data][currency]"] == ["eur"]
    assert form["metadata[organization_id]"] == [str(org.pk)]
    assert session.stripe_session_id.startswith("cs_test_") and session.url.endswith(session.stripe_session_id)
    assert session.status == "open"


def test_checkout_refuses_bad_amounts_and_reports_stripe_errors(org, plan, fake_stripe, settings):
    with pytest.raises(ValueError):
        services.checkout_create(organization_id=org.pk, amount=Decimal("1"), success_url="http://x/", cancel_url="http://x/")
    settings.STRIPE_SECRET_KEY = "sk_test_wrong"
    with pytest.raises(CheckoutError):
        services.checkout_create(organization_id=org.pk, amount=Decimal("20"), success_url="http://x/", cancel_url="http://x/")
    assert not CheckoutSession.objects.exists()


def test_signed_completed_event_grants_credit_once(session, fake_stripe, org):
    event = fake_stripe.pay(session.stripe_session_id)
    body, header = FakeStripe.signed(event, WEBHOOK_SECRET)
    assert post_event(body, header).status_code == 200
    assert post_event(body, header).status_code == 200  # Stripe redelivers the same event
    # A different event for the same session (e.g. async_payment_succeeded) does not grant again.
    other = FakeStripe.event("checkout.session.async_payment_succeeded", event["data"]["object"])
    assert post_event(*FakeStripe.signed(other, WEBHOOK_SECRET)).status_code == 200
    account = CreditAccount.objects.get(organization=org)
    assert account.balance == Decimal("50")
    entry = CreditEntry.objects.get(organization=org)
    assert (entry.kind, entry.amount) == ("purchase", Decimal("50"))
    assert CheckoutSession.objects.get(pk=session.pk).status == "completed"
    assert StripeEvent.objects.count() == 2


@pytest.mark.parametrize(
    "tamper",
    ["wrong_secret", "missing", "body_changed", "stale", "garbage"],
)
def test_bad_signatures_are_refused_and_grant_nothing(session, fake_stripe, org, tamper):
    event = fake_stripe.pay(session.stripe_session_id)
    body, header = FakeStripe.signed(event, WEBHOOK_SECRET)
    if tamper == "wrong_secret":
        body, header = FakeStripe.signed(event, "whsec_someone_else")
    elif tamper == "missing":
        header = None
    elif tamper == "body_changed":
        body = json.dumps({**event, "id": "evt_forged"}).encode()
    elif tamper == "stale":
        body, header = FakeStripe.signed(event, WEBHOOK_SECRET, timestamp=int(time.time()) - 3600)
    elif tamper == "garbage":
        header = "nonsense"
    response = post_event(body, header)
    assert response.status_code == 400
    assert not CreditEntry.objects.exists() and not StripeEvent.objects.exists()


def test_unpaid_completion_and_foreign_sessions_grant_nothing(session, fake_stripe, org):
    obj = {**fake_stripe.sessions[session.stripe_session_id], "status": "complete", "payment_status": "unpaid"}
    assert post_event(*FakeStripe.signed(FakeStripe.event("checkout.session.completed", obj), WEBHOOK_SECRET)).status_code == 200
    foreign = {**obj, "id": "cs_test_not_ours", "payment_status": "paid"}
    assert post_event(*FakeStripe.signed(FakeStripe.event("checkout.session.completed", foreign), WEBHOOK_SECRET)).status_code == 200
    assert not CreditEntry.objects.exists()


def test_api_checkout(api, org, plan, fake_stripe):
    response = api.post("/api/v1/credits/checkout/", {"amount": "25.00"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "url", "amount", "currency", "status"}
    assert (body["amount"], body["currency"], body["status"]) == ("25.0000", "EUR", "open")
    assert fake_stripe.sessions[body["id"]]["amount_total"] == 2500
    bad = api.post("/api/v1/credits/checkout/", {"amount": "0.50"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid"


def test_agents_cannot_buy_and_owner_page_redirects_to_stripe(client, agent, owner, org, plan, fake_stripe):
    client.force_login(agent)
    assert client.post("/api/v1/credits/checkout/", {"amount": "25"}).status_code == 403
    assert client.post("/billing/buy/", {"amount": "20"}).status_code == 403
    client.force_login(owner)
    response = client.post("/billing/buy/", {"amount": "20"})
    assert response.status_code == 302
    session = CheckoutSession.objects.get()
    assert response["Location"] == session.url and session.amount == Decimal("20")
