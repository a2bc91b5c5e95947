import pytest

from inbox.models import Message
from inbox.services.polling import telegram_poll
from inbox.services.webhooks import webhook_event_process
from providers.fakes.telegram import FakeTelegram
from providers.models import WebhookEvent

from ..factories import ChannelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_telegram():
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def polling_channel(org, fake_telegram):
    channel = ChannelFactory(organization=org, kind="telegram")
    channel.config = {"mode": "polling", "api_base_url": fake_telegram.base_url}
    channel.save()
    return channel


def test_polled_updates_are_stored_once_and_processed_like_webhooks(polling_channel, fake_telegram):
    fake_telegram.enqueue_update(
        FakeTelegram.update_text(900001, 5550001, "hello from polling", first_name="Ana")
    )
    fake_telegram.enqueue_update(FakeTelegram.update_text(900002, 5550001, "second", first_name="Ana"))

    assert telegram_poll(channel_id=polling_channel.pk) == 2
    events = list(WebhookEvent.objects.filter(channel=polling_channel).order_by("event_id"))
    assert [e.event_id for e in events] == ["900001", "900002"]
    # The next poll confirms what was stored (offset = last update_id + 1) and stores nothing twice.
    assert telegram_poll(channel_id=polling_channel.pk) == 0
    get_updates = fake_telegram.received("getUpdates")
    assert "900003" in get_updates[-1].body.decode()

    for event in events:
        assert webhook_event_process(event_id=event.pk) == "processed"
    texts = list(
        Message.objects.filter(channel=polling_channel).order_by("created_at").values_list("text", flat=True)
    )
    assert texts == ["hello from polling", "second"]


def test_webhook_mode_channels_are_not_polled(org, fake_telegram):
    channel = ChannelFactory(organization=org, kind="telegram")
    channel.config = {"mode": "webhook", "api_base_url": fake_telegram.base_url}
    channel.save()
    fake_telegram.enqueue_update(FakeTelegram.update_text(1, 2, "x"))
    assert telegram_poll(channel_id=channel.pk) == 0
    assert fake_telegram.received("getUpdates") == []
