"""send() pushes to the visitor's group over the real (Redis) channel layer."""

import asyncio

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from providers.base import DeliveryStatus, OutboundMessage
from providers.registry import get_provider
from providers.webchat import visitor_group

pytestmark = pytest.mark.django_db

VISITOR = "v_Zm9vYmFyYmF6cXV4"


async def _listen(groups: list[str]):
    layer = get_channel_layer()
    name = await layer.new_channel()
    for group in groups:
        await layer.group_add(group, name)
    return layer, name


async def _receive(layer, name, timeout=3.0):
    return await asyncio.wait_for(layer.receive(name), timeout)


def test_send_reaches_the_visitors_group_only(channel):
    provider = get_provider(channel)

    async def scenario():
        layer, mine = await _listen([visitor_group(channel.pk, VISITOR)])
        _, other = await _listen([visitor_group(channel.pk, "v_someone_else")])
        # send() is sync (it runs in a Celery worker): run it in a thread as the worker would.
        result = await sync_to_async(provider.send)(
            OutboundMessage(message_id=4242, to=VISITOR, text="Yes, we ship to Portugal.")
        )
        event = await _receive(layer, mine)
        with pytest.raises(asyncio.TimeoutError):
            await _receive(layer, other, timeout=0.5)
        return result, event

    result, event = async_to_sync(scenario)()
    assert result.platform_message_id == "webchat:4242"
    assert result.status == DeliveryStatus.SENT
    assert event["type"] == "live.event"
    assert event["event"]["type"] == "message.created"
    data = event["event"]["data"]
    assert data["id"] == 4242
    assert data["direction"] == "out"
    assert data["text"] == "Yes, we ship to Portugal."


def test_send_with_no_listener_still_counts_as_sent(channel):
    result = get_provider(channel).send(OutboundMessage(message_id=7, to="v_nobody_listens", text="Hi"))
    assert result.platform_message_id == "webchat:7"


def test_visitor_groups_are_valid_channel_layer_names(channel):
    group = visitor_group(channel.pk, "user+ana@example.com with spaces/and:colons")
    layer = get_channel_layer()
    assert layer.require_valid_group_name(group)
    assert visitor_group(channel.pk, "a") != visitor_group(channel.pk, "b")


def test_lookup_says_resending_is_safe(channel):
    from datetime import UTC, datetime

    provider = get_provider(channel)
    assert provider.supports_lookup
    assert provider.lookup(OutboundMessage(message_id=1, to=VISITOR), datetime.now(UTC)) is None


def test_check_round_trips_the_channel_layer(channel):
    result = get_provider(channel).check()
    assert result.ok, result.detail
    assert "https://shop.example.com" in result.detail


def test_check_without_origins_fails(channel):
    channel.config = {}
    assert not get_provider(channel).check().ok


def test_lookup_key_is_the_first_allowed_origin(channel):
    assert get_provider(channel).lookup_key() == "https://shop.example.com"


def test_widget_settings_defaults_and_pre_chat_shapes(channel):
    settings = get_provider(channel).widget_settings()
    assert settings["name"] == "Shop chat"
    assert settings["pre_chat_form"] == {"enabled": False, "name": "hidden", "email": "hidden"}
    channel.config = {**channel.config, "pre_chat_form": True, "greeting": "Olá!"}
    settings = get_provider(channel).widget_settings()
    assert settings["pre_chat_form"] == {"enabled": True, "name": "optional", "email": "required"}
    assert settings["greeting"] == "Olá!"
    channel.config = {**channel.config, "pre_chat_form": {"name": "required", "email": "bogus"}}
    assert get_provider(channel).widget_settings()["pre_chat_form"] == {
        "enabled": True,
        "name": "required",
        "email": "optional",
    }
