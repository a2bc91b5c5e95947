"""The channel send runner (inbox/services/sending.py) against local fake platforms, PostgreSQL and Redis.

The runner is called in this process (its kicks queue tasks on the test Redis that no worker takes);
tests/pipeline/test_worker_pipeline.py drives the same runner through a real Celery worker.
"""

import base64
import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from billing import services as billing
from billing.models import CreditHold, Plan, Price, UsageRecord
from inbox.models import Message
from inbox.services.messages import message_create_outbound, message_sweep
from inbox.services.sending import _coord, channel_sends_run
from providers.fakes.telegram import FakeTelegram
from providers.fakes.whatsapp import FakeWhatsApp

from ..factories import ChannelFactory, ContactIdentityFactory, ConversationFactory

RUN_TASK = "inbox.tasks.channel_sends_run_task"


@pytest.fixture(autouse=True)
def _clean_redis():
    """Kick keys, runner locks and rate buckets of earlier tests (channel ids can repeat)."""
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture
def fake_telegram():
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def tg_channel(transactional_db, org, fake_telegram):
    return ChannelFactory(
        organization=org,
        kind="telegram",
        config={"mode": "webhook", "api_base_url": fake_telegram.base_url},
        credentials={"bot_token": "7000000001:AAHk9-fakeTokenForTests_xyz", "secret_token": "tg-secret_1"},
    )


def _conversation(channel, value, kind="phone"):
    identity = ContactIdentityFactory(
        contact__organization=channel.organization, kind=kind, value=value, channel=channel
    )
    return ConversationFactory(
        organization=channel.organization,
        channel=channel,
        contact=identity.contact,
        last_inbound_at=timezone.now(),
    )


def _wa_sends(fake) -> list[str]:
    """Bodies of the text messages the WhatsApp fake received, in arrival order."""
    return [
        r.json["text"]["body"]
        for r in fake.received("/messages", method="POST")
        if r.json.get("type") == "text"
    ]


def _queued_runs() -> list[int]:
    """Channel ids of the runner tasks waiting on the `live` queue."""
    out = []
    for raw in redis.Redis.from_url(settings.REDIS_URL).lrange("live", 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] == RUN_TASK:
            out.append(json.loads(base64.b64decode(message["body"]))[0][0])
    return out


def test_a_run_sends_each_message_once_and_each_conversation_in_order(wa_channel, fake_whatsapp):
    conversations = [_conversation(wa_channel, f"+1555123{i:04d}") for i in range(5)]
    texts = []
    for round_ in range(3):
        for conversation in conversations:
            text = f"c{conversation.pk}-r{round_}"
            message_create_outbound(conversation=conversation, text=text)
            texts.append(text)

    counts = channel_sends_run(channel_id=wa_channel.pk)

    assert counts == {"sent": 15}
    sent = _wa_sends(fake_whatsapp)
    assert sorted(sent) == sorted(texts)  # every message once
    for conversation in conversations:
        mine = [t for t in sent if t.startswith(f"c{conversation.pk}-")]
        assert mine == [f"c{conversation.pk}-r{r}" for r in range(3)]
    messages = Message.objects.filter(channel=wa_channel, direction="out")
    assert {m.status for m in messages} == {"sent"}
    assert all(m.platform_message_id and m.sent_at and m.attempts == 1 for m in messages)
    keys = set(
        UsageRecord.objects.filter(organization=wa_channel.organization).values_list(
            "idempotency_key", flat=True
        )
    )
    assert keys == {f"msg:{m.pk}" for m in messages}
    # Nothing left: a second run claims nothing and sends nothing.
    assert channel_sends_run(channel_id=wa_channel.pk) == {}
    assert len(_wa_sends(fake_whatsapp)) == 15


def test_creating_messages_queues_one_runner_per_channel(wa_channel, fake_whatsapp):
    conversations = [_conversation(wa_channel, f"+1555124{i:04d}") for i in range(3)]
    for conversation in conversations:
        message_create_outbound(conversation=conversation, text="hello")
    assert _queued_runs() == [wa_channel.pk]
    # The runner clears the kick when it starts: a message created after that queues a runner again.
    channel_sends_run(channel_id=wa_channel.pk)
    message_create_outbound(conversation=conversations[0], text="later")
    assert _queued_runs() == [wa_channel.pk, wa_channel.pk]


def test_a_second_runner_of_the_same_channel_leaves_it_to_the_first(wa_channel, fake_whatsapp):
    message, _ = message_create_outbound(conversation=_conversation(wa_channel, "+15551250000"), text="one")
    coordination = _coord()
    token = coordination.lock(wa_channel.pk)
    try:
        assert channel_sends_run(channel_id=wa_channel.pk) == {"busy": 1}
        assert Message.objects.get(pk=message.pk).status == "pending"
    finally:
        coordination.unlock(wa_channel.pk, token)
    assert channel_sends_run(channel_id=wa_channel.pk) == {"sent": 1}


def test_messages_created_while_a_runner_works_queue_no_task_of_their_own(wa_channel, fake_whatsapp):
    conversation = _conversation(wa_channel, "+15551250001")
    message_create_outbound(conversation=conversation, text="one")
    coordination = _coord()
    token = coordination.lock(wa_channel.pk)  # another worker's runner holds the channel
    try:
        assert channel_sends_run(channel_id=wa_channel.pk) == {"busy": 1}
        message_create_outbound(conversation=conversation, text="two")
        assert _queued_runs() == [wa_channel.pk]  # the first message's only
    finally:
        coordination.unlock(wa_channel.pk, token)
    assert channel_sends_run(channel_id=wa_channel.pk) == {"sent": 2}
    assert _wa_sends(fake_whatsapp) == ["one", "two"]


def test_a_permanent_failure_fails_its_message_alone(wa_channel, fake_whatsapp):
    conversations = [_conversation(wa_channel, f"+1555126{i:04d}") for i in range(4)]
    fake_whatsapp.fail_next(
        1,
        FakeWhatsApp.error(
            131026, "(#131026) Message undeliverable", details="Receiver is incapable of receiving"
        ),
        path_contains="/messages",
    )
    for conversation in conversations:
        message_create_outbound(conversation=conversation, text="hi")

    assert channel_sends_run(channel_id=wa_channel.pk) == {"sent": 3, "failed": 1}

    failed = Message.objects.get(channel=wa_channel, status="failed")
    assert failed.error_code == "131026" and "undeliverable" in failed.error_reason
    assert not UsageRecord.objects.filter(idempotency_key=f"msg:{failed.pk}").exists()
    assert Message.objects.filter(channel=wa_channel, status="sent").count() == 3
    assert len(fake_whatsapp.received("/messages", method="POST")) == 4  # nobody sent twice


def test_a_429_waits_the_advised_time_without_counting_an_attempt(wa_channel, fake_whatsapp):
    fake_whatsapp.fail_next(
        1,
        FakeWhatsApp.error(130429, "(#130429) Rate limit hit", status=429, headers={"Retry-After": "2"}),
        path_contains="/messages",
    )
    message, _ = message_create_outbound(conversation=_conversation(wa_channel, "+15551270000"), text="paced")

    assert channel_sends_run(channel_id=wa_channel.pk) == {"retrying": 1}
    message.refresh_from_db()
    assert message.status == "pending" and message.attempts == 0
    assert message.send_after >= timezone.now() + timedelta(seconds=1.5)
    assert "Retrying" in message.error_reason
    assert _queued_runs()  # the runner scheduled itself for after the wait

    assert channel_sends_run(channel_id=wa_channel.pk) == {}  # too early: not claimed, not sent
    time.sleep(max(0.0, (message.send_after - timezone.now()).total_seconds()) + 0.05)
    assert channel_sends_run(channel_id=wa_channel.pk) == {"sent": 1}
    first, second = fake_whatsapp.received("/messages", method="POST")
    assert second.at - first.at >= 2.0
    message.refresh_from_db()
    assert message.status == "sent" and message.attempts == 1 and message.error_reason == ""


def test_a_5xx_is_retried_after_a_backoff(wa_channel, fake_whatsapp):
    fake_whatsapp.fail_next(
        1, FakeWhatsApp.error(1, "An unknown error occurred", status=500), path_contains="/messages"
    )
    message, _ = message_create_outbound(conversation=_conversation(wa_channel, "+15551280000"), text="again")

    assert channel_sends_run(channel_id=wa_channel.pk) == {"retrying": 1}
    message.refresh_from_db()
    assert message.status == "pending" and message.attempts == 1 and message.send_after > timezone.now()
    time.sleep(max(0.0, (message.send_after - timezone.now()).total_seconds()) + 0.05)
    assert channel_sends_run(channel_id=wa_channel.pk) == {"sent": 1}
    message.refresh_from_db()
    assert message.attempts == 2 and message.status == "sent"


def test_telegram_chat_limit_defers_the_second_message_to_the_same_chat(tg_channel, fake_telegram):
    conversation = _conversation(tg_channel, "424242", kind="telegram")
    first, _ = message_create_outbound(conversation=conversation, text="first")
    second, _ = message_create_outbound(conversation=conversation, text="second")

    assert channel_sends_run(channel_id=tg_channel.pk) == {"sent": 1}
    second.refresh_from_db()
    assert second.status == "pending" and second.attempts == 0
    assert second.send_after > timezone.now()  # one message per second per chat (at 90 %)

    time.sleep(max(0.0, (second.send_after - timezone.now()).total_seconds()) + 0.05)
    assert channel_sends_run(channel_id=tg_channel.pk) == {"sent": 1}
    calls = fake_telegram.received("/sendMessage")
    assert [c.json["text"] for c in calls] == ["first", "second"]
    assert calls[1].at - calls[0].at >= 1.0


def test_a_paused_channel_fails_its_pending_messages_without_calling_the_platform(wa_channel, fake_whatsapp):
    message, _ = message_create_outbound(conversation=_conversation(wa_channel, "+15551290000"), text="x")
    wa_channel.status = "paused"
    wa_channel.save()

    assert channel_sends_run(channel_id=wa_channel.pk) == {"failed": 1}
    message.refresh_from_db()
    assert message.status == "failed" and message.error_code == "channel_inactive"
    assert fake_whatsapp.received("/messages", method="POST") == []


def _price_service_messages(org, unit: str) -> None:
    plan = Plan.objects.create(code="std", name="Standard", currency="EUR", is_default=True)
    Price.objects.create(
        plan=plan,
        meter="message.out.whatsapp_cloud.service",
        unit_price=Decimal(unit),
        currency="EUR",
        effective_from=timezone.now() - timedelta(days=1),
    )


def test_priced_sends_hold_then_charge_their_credit(org, wa_channel, fake_whatsapp):
    _price_service_messages(org, "0.10")
    billing.credit_add(
        organization_id=org.pk, amount=Decimal("1.00"), kind="grant", idempotency_key="grant:1"
    )
    for i in range(3):
        message_create_outbound(conversation=_conversation(wa_channel, f"+1555130{i:04d}"), text="priced")

    assert channel_sends_run(channel_id=wa_channel.pk) == {"sent": 3}

    usage = UsageRecord.objects.filter(organization=org)
    assert usage.count() == 3 and {u.cost for u in usage} == {Decimal("0.1000")}
    account = billing.credit_account_get_or_create(organization_id=org.pk)
    assert account.balance == Decimal("0.7000") and account.held == Decimal("0")
    assert not CreditHold.objects.filter(closed_at__isnull=True).exists()


def test_a_send_the_credit_cannot_cover_fails_before_the_platform_call(org, wa_channel, fake_whatsapp):
    message, _ = message_create_outbound(conversation=_conversation(wa_channel, "+15551310000"), text="x")
    _price_service_messages(org, "0.10")  # priced after creation: the strict gate is the claim's

    assert channel_sends_run(channel_id=wa_channel.pk) == {"failed": 1}
    message.refresh_from_db()
    assert message.status == "failed" and message.error_code == "insufficient_credits"
    assert fake_whatsapp.received("/messages", method="POST") == []


def test_the_sweeper_requeues_a_lost_runner_but_not_a_message_waiting_for_its_retry(
    wa_channel, fake_whatsapp
):
    lost, _ = message_create_outbound(conversation=_conversation(wa_channel, "+15551320000"), text="lost")
    waiting, _ = message_create_outbound(
        conversation=_conversation(wa_channel, "+15551320001"), text="waiting"
    )
    long_ago = timezone.now() - timedelta(minutes=10)
    Message.objects.filter(pk=lost.pk).update(updated_at=long_ago)
    Message.objects.filter(pk=waiting.pk).update(
        updated_at=long_ago, send_after=timezone.now() + timedelta(minutes=3)
    )
    redis.Redis.from_url(settings.REDIS_URL).delete("live")

    counts = message_sweep()

    assert counts["pending_requeued"] == 1
    assert _queued_runs() == [wa_channel.pk]
    assert channel_sends_run(channel_id=wa_channel.pk) == {"sent": 1}
    assert _wa_sends(fake_whatsapp) == ["lost"]


def test_a_platform_id_already_stored_leaves_that_message_to_the_sweeper_and_records_the_others(
    tg_channel, fake_telegram
):
    first = _conversation(tg_channel, "777", kind="telegram")
    message_create_outbound(conversation=first, text="before")
    assert channel_sends_run(channel_id=tg_channel.pk) == {"sent": 1}
    fake_telegram.reset()  # the fake numbers the chat's messages from 1 again: "777:1" comes back
    time.sleep(1.2)  # the chat's rate limit
    repeated, _ = message_create_outbound(conversation=first, text="again")
    other, _ = message_create_outbound(
        conversation=_conversation(tg_channel, "888", kind="telegram"), text="other"
    )

    assert channel_sends_run(channel_id=tg_channel.pk) == {"sent": 1, "error": 1}

    repeated.refresh_from_db()
    other.refresh_from_db()
    assert repeated.status == "sending" and repeated.platform_message_id is None
    assert other.status == "sent" and other.platform_message_id == "888:1"
