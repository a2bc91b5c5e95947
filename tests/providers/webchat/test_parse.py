"""One test per payload fixture (bodies our widget endpoints write, parsed by the provider)."""

from datetime import UTC, datetime

import pytest

from providers.base import DeliveryStatus, InboundMessage, StatusUpdate
from providers.errors import MalformedPayloadError
from providers.registry import get_provider
from providers.webchat import client_id_of, platform_id_for, visitor_key

from .conftest import payload_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def provider(channel):
    return get_provider(channel)


def test_message__text(provider):
    [item] = provider.parse(payload_bytes("message__text"), {})
    assert isinstance(item, InboundMessage)
    assert item.sender_kind == "webchat"
    assert item.sender_value == "v_Zm9vYmFyYmF6cXV4"
    assert item.text == "Hello, do you ship to Portugal?"
    assert item.sender_name == "Ana Souza"
    assert item.timestamp == datetime(2026, 3, 2, 10, 15, 30, 123456, tzinfo=UTC)
    assert item.content == {"page_url": "https://shop.example.com/cart"}
    assert item.platform_message_id == f"wc:{visitor_key('v_Zm9vYmFyYmF6cXV4')}:a1b2c3d4e5f60718"
    assert client_id_of(item.platform_message_id) == "a1b2c3d4e5f60718"


def test_message__verified_user(provider):
    [item] = provider.parse(payload_bytes("message__verified_user"), {})
    assert item.sender_value == "user-8812@example.com"
    assert item.platform_message_id == platform_id_for("user-8812@example.com", "Zx_9-yy00aa")
    assert item.sender_name == ""
    assert item.content == {}


def test_receipt__read(provider):
    items = provider.parse(payload_bytes("receipt__read"), {})
    assert items == [
        StatusUpdate(
            "webchat:41", DeliveryStatus.READ, datetime(2026, 3, 2, 10, 17, tzinfo=UTC), our_reference="41"
        ),
        StatusUpdate(
            "webchat:42", DeliveryStatus.READ, datetime(2026, 3, 2, 10, 17, tzinfo=UTC), our_reference="42"
        ),
    ]


def test_receipt__delivered(provider):
    [item] = provider.parse(payload_bytes("receipt__delivered"), {})
    assert item.status == DeliveryStatus.DELIVERED
    assert item.platform_message_id == "webchat:41"


def test_receipt__unknown_status(provider):
    assert provider.parse(payload_bytes("receipt__unknown_status"), {}) == []


def test_unknown__type(provider):
    assert provider.parse(payload_bytes("unknown__type"), {}) == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"type": "message", "client_id": "a1b2c3d4e5f6", "text": "x", "at": "2026-03-02T10:00:00+00:00"}',
        b'{"type": "message", "visitor": "v_x", "client_id": "short", "text": "x", "at": "2026-03-02T10:00:00+00:00"}',
        b'{"type": "message", "visitor": "v_x", "client_id": "a1b2c3d4e5f6", "text": "x", "at": "yesterday"}',
    ],
)
def test_malformed_bodies(provider, body):
    with pytest.raises(MalformedPayloadError):
        provider.parse(body, {})


def test_platform_ids_of_two_visitors_never_collide():
    assert platform_id_for("v_a", "a1b2c3d4e5f6") != platform_id_for("v_b", "a1b2c3d4e5f6")
