import csv
import io
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import services

from .conftest import fund, record

MARCH = date(2026, 3, 1)


def at(day: int) -> datetime:
    return datetime(2026, 3, day, 10, tzinfo=services.UTC)


@pytest.fixture
def usage(org, other_org, prices):
    fund(org.pk, "10")
    fund(other_org.pk, "10")
    record(org.pk, "msg:1", quantity=2, channel_id=7, occurred_at=at(2))
    record(org.pk, "msg:2", quantity=1, channel_id=7, occurred_at=at(2))
    record(org.pk, "msg:3", meter="message.out.whatsapp_cloud.marketing", kind="whatsapp_cloud", channel_id=8, occurred_at=at(3))
    record(other_org.pk, "o:1", quantity=5, channel_id=99, occurred_at=at(2))
    return org


def test_usage_shape_grouped_by_channel_meter_day(api, usage):
    response = api.get("/api/v1/usage/", {"from": "2026-03-01", "to": "2026-03-31"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results", "total_cost", "currency"}
    assert body["total_cost"] == "0.2500" and body["currency"] == "EUR"
    assert body["results"] == [
        {"channel": 7, "channel_kind": "twilio_sms", "meter": "message.out.twilio_sms", "day": "2026-03-02", "quantity": 3, "cost": "0.1500"},
        {"channel": 8, "channel_kind": "whatsapp_cloud", "meter": "message.out.whatsapp_cloud.marketing", "day": "2026-03-03", "quantity": 1, "cost": "0.1000"},
    ]


def test_usage_group_by_subset_and_validation(api, usage):
    body = api.get("/api/v1/usage/", {"from": "2026-03-01", "to": "2026-03-31", "group_by": "meter"}).json()
    assert [(r["meter"], r["channel"], r["day"], r["quantity"]) for r in body["results"]] == [
        ("message.out.twilio_sms", None, None, 3),
        ("message.out.whatsapp_cloud.marketing", None, None, 1),
    ]
    body = api.get("/api/v1/usage/", {"from": "2026-03-03", "to": "2026-03-03", "group_by": "day"}).json()
    assert body["results"] == [
        {"channel": None, "channel_kind": None, "meter": None, "day": "2026-03-03", "quantity": 1, "cost": "0.1000"}
    ]
    bad = api.get("/api/v1/usage/", {"group_by": "country"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid"
    assert "group_by" in bad.json()["error"]["details"]
    assert api.get("/api/v1/usage/", {"from": "2026-03-05", "to": "2026-03-01"}).status_code == 400
    assert api.get("/api/v1/usage/", {"from": "2025-01-01", "to": "2026-03-01"}).status_code == 400


def test_usage_and_credits_are_scoped_to_the_organization(api, other_api, usage, other_org):
    other = other_api.get("/api/v1/usage/", {"from": "2026-03-01", "to": "2026-03-31"}).json()
    assert [r["channel"] for r in other["results"]] == [99] and other["total_cost"] == "0.2500"
    mine = api.get("/api/v1/usage/", {"from": "2026-03-01", "to": "2026-03-31"}).json()
    assert 99 not in [r["channel"] for r in mine["results"]]
    credits = other_api.get("/api/v1/credits/").json()
    assert [e["reference"] for e in credits["entries"]] == ["o:1", ""]


def test_credits_shape(api, usage):
    body = api.get("/api/v1/credits/").json()
    assert set(body) == {"balance", "currency", "entries"}
    assert (body["balance"], body["currency"]) == ("9.7500", "EUR")
    newest = body["entries"][0]
    assert set(newest) == {"id", "kind", "amount", "balance_after", "reference", "created_at"}
    assert (newest["kind"], newest["amount"], newest["balance_after"], newest["reference"]) == (
        "consumption", "-0.1000", "9.7500", "msg:3",
    )
    assert [e["kind"] for e in body["entries"]] == ["consumption", "consumption", "consumption", "grant"]
    assert len(api.get("/api/v1/credits/", {"limit": 2}).json()["entries"]) == 2


def test_credits_of_a_new_organization_and_auth(api, client):
    assert api.get("/api/v1/credits/").json() == {"balance": "0.0000", "currency": "EUR", "entries": []}
    response = client.get("/api/v1/credits/")
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"


def test_usage_csv_export(api, usage):
    services.usage_refund(idempotency_key="msg:2", reason="test")
    response = api.get("/api/v1/usage/export.csv", {"from": "2026-03-01", "to": timezone.now().date().isoformat()})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    keys = [r["idempotency_key"] for r in rows]
    assert keys == ["msg:1", "msg:2", "msg:3", "refund:msg:2"]
    assert rows[0]["cost"] == "0.1000" and rows[0]["quantity"] == "2" and rows[0]["unit_price"] == "0.050000"
    assert rows[3]["reverses"] == "msg:2" and rows[3]["cost"] == "-0.0500"


def test_invoices_api_html_and_csv_with_isolation(api, other_api, client, owner, agent, usage, other_org):
    invoice = services.invoice_issue(invoice_id=services.invoice_build(organization_id=usage.pk, month=MARCH).pk)
    other_invoice = services.invoice_issue(invoice_id=services.invoice_build(organization_id=other_org.pk, month=MARCH).pk)
    listed = api.get("/api/v1/invoices/").json()
    assert [i["number"] for i in listed["results"]] == [invoice.number] and listed["next"] is None
    detail = api.get(f"/api/v1/invoices/{invoice.pk}/").json()
    assert detail["total"] == "0.2500" and len(detail["lines"]) == 2
    assert api.get(f"/api/v1/invoices/{other_invoice.pk}/").status_code == 404
    assert other_api.get(f"/api/v1/invoices/{invoice.pk}/export.csv").status_code == 404
    rows = list(csv.reader(io.StringIO(api.get(f"/api/v1/invoices/{invoice.pk}/export.csv").content.decode())))
    assert rows[0][0] == "invoice" and rows[-1][3:] == ["total", "", "", "", "0.2500", "EUR"]

    client.force_login(owner)
    page = client.get(f"/billing/invoices/{invoice.pk}/")
    assert page.status_code == 200
    assert invoice.number in page.content.decode() and "0.25" in page.content.decode()
    assert client.get(f"/billing/invoices/{other_invoice.pk}/").status_code == 404
    assert client.get(f"/billing/invoices/{invoice.pk}.csv").content.decode().startswith("invoice,")
    client.force_login(agent)
    assert client.get(f"/billing/invoices/{invoice.pk}/").status_code == 403


def test_billing_page_for_owners(client, owner, agent, org, prices):
    fund(org.pk, "1")
    record(org.pk, "msg:now", quantity=4)
    record(org.pk, "msg:wa", meter="message.out.whatsapp_cloud.marketing", kind="whatsapp_cloud")
    client.force_login(owner)
    page = client.get("/billing/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="balance">0.70 EUR' in html
    assert "twilio_sms" in html and "whatsapp_cloud" in html and "<rect" in html
    assert 'width="100"' in html and 'width="50"' in html  # bars relative to the largest cost
    assert "Buy credits" in html
    response = client.post("/billing/alert/", {"low_balance_threshold": "5"})
    assert response.status_code == 302
    assert "Your credit is low" in client.get("/billing/").content.decode()
    client.force_login(agent)
    assert client.get("/billing/").status_code == 403


def test_usage_csv_page_export_for_owner(client, owner, org, prices):
    fund(org.pk, "1")
    record(org.pk, "msg:now")
    client.force_login(owner)
    today = timezone.now().date()
    response = client.get("/billing/usage.csv", {"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()})
    assert response.status_code == 200
    assert "msg:now" in response.content.decode() and Decimal("0.05") == Decimal(
        list(csv.DictReader(io.StringIO(response.content.decode())))[0]["cost"]
    )
