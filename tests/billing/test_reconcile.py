"""Usage equals exactly what the platforms accepted: the real pipeline (a Celery worker process, the
fake platforms over HTTP, signed webhooks) with injected failures, then billing_reconcile."""

import io
import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django.utils import timezone

from billing import services
from billing.models import CreditAccount, CreditEntry, UsageRecord
from inbox.models import Message
from inbox.services.messages import message_create_outbound
from providers.fakes.twilio import FakeTwilio
from providers.fakes.whatsapp import FakeWhatsApp
from providers.whatsapp_cloud import sign

from ..factories import ChannelFactory, ContactIdentityFactory, ConversationFactory, MessageFactory
from ..pipeline.conftest import wait_until
from .conftest import add_price, fund

PHONE_NUMBER_ID = "106540352242922"


def _conversation(channel, number: str):
    identity = ContactIdentityFactory(contact__organization=channel.organization, value=number)
    return ConversationFactory(
        organization=channel.organization, channel=channel, contact=identity.contact, last_inbound_at=timezone.now()
    )


def _post_wa(client, channel, payload):
    body = json.dumps(payload).encode()
    return client.post(
        f"/webhooks/whatsapp_cloud/{channel.webhook_token}/",
        data=body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=sign(body, "test-app-secret"),
    )


def _reconcile(org) -> tuple[bool, str]:
    out = io.StringIO()
    try:
        call_command("billing_reconcile", "--org", str(org.pk), "--month", timezone.now().strftime("%Y-%m"), stdout=out)
    except CommandError as exc:
        return False, out.getvalue() + str(exc)
    return True, out.getvalue()


@pytest.fixture
def fake_twilio():
    with FakeTwilio() as fake:
        yield fake


def test_usage_equals_what_the_platforms_accepted(worker, client, org, plan, wa_channel, fake_whatsapp, fake_twilio):
    add_price(plan, "message.out.twilio_sms", "0.05", channel_kind="twilio_sms")
    add_price(plan, "message.out.whatsapp_cloud", "0.02")
    add_price(plan, "message.out.whatsapp_cloud.service", "0.02")
    fund(org.pk, "10")
    sms = ChannelFactory(organization=org, kind="twilio_sms", name="SMS")
    sms.config = {**sms.config, "api_base_url": fake_twilio.base_url}
    sms.save()

    # WhatsApp: the first two sends hit a 503 and are retried by the worker.
    fake_whatsapp.fail_next(2, FakeWhatsApp.error(2, "Service temporarily unavailable", status=503), "/messages")
    sent = []
    for i in range(4):
        sent.append(message_create_outbound(conversation=_conversation(wa_channel, f"+1555123000{i}"), text=f"wa {i}")[0])
    # SMS: a long text of 3 segments (GSM-7, 153 characters each) and short ones; one rejected permanently.
    long_text = "x" * 400
    sent.append(message_create_outbound(conversation=_conversation(sms, "+15551239000"), text=long_text)[0])
    sent.append(message_create_outbound(conversation=_conversation(sms, "+15551239001"), text="short")[0])
    fake_twilio.unsubscribed.add("+15551239002")
    rejected, _ = message_create_outbound(conversation=_conversation(sms, "+15551239002"), text="never")

    wait_until(
        lambda: Message.objects.filter(pk__in=[m.pk for m in sent], status="sent").count() == len(sent),
        timeout=60,
        what="every message sent",
    )
    wait_until(lambda: Message.objects.get(pk=rejected.pk).status == "failed", what="the rejected SMS to fail")

    # Duplicate status webhooks (redelivered by Meta) change nothing in billing.
    now = int(time.time())
    for message in Message.objects.filter(channel=wa_channel, direction="out"):
        payload = FakeWhatsApp.status_payload(PHONE_NUMBER_ID, message.platform_message_id, "delivered", "15551230000", now)
        for _ in range(3):
            assert _post_wa(client, wa_channel, payload).status_code == 200
    time.sleep(2)

    usage = UsageRecord.objects.filter(organization=org)
    assert sorted(usage.values_list("idempotency_key", flat=True)) == sorted(f"msg:{m.pk}" for m in sent)
    assert not usage.filter(idempotency_key=f"msg:{rejected.pk}").exists()
    segments = dict(usage.filter(channel_kind="twilio_sms").values_list("idempotency_key", "quantity"))
    assert segments == {f"msg:{sent[4].pk}": 3, f"msg:{sent[5].pk}": 1}
    account = CreditAccount.objects.get(organization=org)
    assert account.balance == CreditEntry.objects.filter(account=account).aggregate(s=Sum("amount"))["s"]
    assert account.balance == Decimal("10") - 4 * Decimal("0.02") - 4 * Decimal("0.05") and account.held == 0

    ok, output = _reconcile(org)
    assert ok, output
    invoice = services.invoice_build(organization_id=org.pk, month=timezone.now().date().replace(day=1))
    assert invoice.total == usage.aggregate(s=Sum("cost"))["s"]


@pytest.mark.django_db
def test_reconcile_reports_missing_unexpected_and_quantity_mismatches(org, plan):
    channel = ChannelFactory(organization=org, kind="twilio_sms")
    conversation = ConversationFactory(organization=org, channel=channel)
    now = timezone.now()

    def accepted(pid, segments=1):
        return MessageFactory(
            conversation=conversation, direction="out", status="delivered", platform_message_id=pid, sent_at=now,
            segments=segments,
        )

    ok_message, unmetered, wrong_quantity = accepted("SM1"), accepted("SM2"), accepted("SM3", segments=2)
    MessageFactory(conversation=conversation, direction="out", status="failed", sent_at=None)  # never accepted
    kw = {"meter": "message.out.twilio_sms", "occurred_at": now, "channel_kind": "twilio_sms"}
    services.usage_record(organization_id=org.pk, quantity=1, idempotency_key=f"msg:{ok_message.pk}", **kw)
    services.usage_record(organization_id=org.pk, quantity=1, idempotency_key=f"msg:{wrong_quantity.pk}", **kw)
    services.usage_record(organization_id=org.pk, quantity=1, idempotency_key="msg:999999", **kw)
    assert _reconcile(org)[0] is False
    _, output = _reconcile(org)
    assert f"MISSING     msg:{unmetered.pk}" in output
    assert "UNEXPECTED  msg:999999" in output
    assert f"QUANTITY    msg:{wrong_quantity.pk}: 2 expected, 1 metered" in output
    assert f"msg:{ok_message.pk}" not in output
    assert "3 mismatches" in output

    services.usage_record(organization_id=org.pk, quantity=1, idempotency_key=f"msg:{unmetered.pk}", **kw)
    services.usage_refund(idempotency_key="msg:999999", reason="metered by mistake")
    services.usage_refund(idempotency_key=f"msg:{wrong_quantity.pk}", reason="re-metered")
    ok, output = _reconcile(org)
    assert ok, output
    assert "2 refunded" in output


def test_killed_worker_send_confirmed_later_is_metered_once(worker, client, org, plan, wa_channel, fake_whatsapp):
    add_price(plan, "message.out.whatsapp_cloud", "0.02")
    add_price(plan, "message.out.whatsapp_cloud.service", "0.02")
    fund(org.pk, "1")
    fake_whatsapp.delay_next(1, 6.0, path_contains="/messages")
    message, _ = message_create_outbound(conversation=_conversation(wa_channel, "+15551230001"), text="Important")
    wait_until(lambda: len(fake_whatsapp.received("/messages", method="POST")) == 1, what="the platform to get it")
    worker.kill()
    from inbox.services.messages import message_sweep

    worker.start()
    message_sweep(stuck_after=timedelta(seconds=0))
    status = FakeWhatsApp.status_payload(
        PHONE_NUMBER_ID, "wamid.LATE", "delivered", "15551230001", biz_opaque_callback_data=f"alexia:{message.pk}"
    )
    assert _post_wa(client, wa_channel, status).status_code == 200
    wait_until(lambda: Message.objects.filter(pk=message.pk, status="delivered").exists(), what="late confirmation")
    ok, output = _reconcile(org)
    assert ok, output
    assert UsageRecord.objects.filter(idempotency_key=f"msg:{message.pk}").count() == 1
