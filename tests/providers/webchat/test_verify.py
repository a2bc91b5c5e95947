"""Web chat has no platform signing its deliveries: the generic webhook URL accepts nothing, and
identity verification is an HMAC-SHA256 of the user id under the channel's identity_secret."""

import json

import pytest
from django.test import RequestFactory

from providers.errors import WebhookVerificationError
from providers.models import WebhookEvent
from providers.registry import get_provider
from providers.webchat import origin_allowed, user_hash, user_hash_valid

from .conftest import IDENTITY_SECRET, payload_bytes

pytestmark = pytest.mark.django_db

# printf '%s' user-8812 | openssl dgst -sha256 -hmac idsecret
USER_8812_HASH = "7b559c965884794cdfc1941aa048c37717af16c5605d69d2577a61f0f3174ecd"


def test_user_hash_matches_an_independent_hmac_sha256():
    assert user_hash(IDENTITY_SECRET, "user-8812") == USER_8812_HASH


@pytest.mark.parametrize(
    "user_id, given, ok",
    [
        ("user-8812", USER_8812_HASH, True),
        ("user-8812", USER_8812_HASH.upper(), True),
        ("user-8812", USER_8812_HASH[:-1] + "0", False),
        ("user-8813", USER_8812_HASH, False),
        ("user-8812", "", False),
        ("", USER_8812_HASH, False),
    ],
)
def test_user_hash_valid(user_id, given, ok):
    assert user_hash_valid(IDENTITY_SECRET, user_id, given) is ok


def test_user_hash_under_another_secret_is_refused():
    assert not user_hash_valid("another-secret", "user-8812", USER_8812_HASH)
    assert not user_hash_valid("", "user-8812", user_hash("", "user-8812"))


def test_verify_refuses_every_request(channel):
    provider = get_provider(channel)
    request = RequestFactory().post("/", data=payload_bytes("message__text"), content_type="application/json")
    with pytest.raises(WebhookVerificationError):
        provider.verify(request)


def test_generic_webhook_url_stores_nothing(client, channel):
    response = client.post(
        f"/webhooks/webchat/{channel.webhook_token}/",
        data=payload_bytes("message__text"),
        content_type="application/json",
    )
    assert response.status_code == 403
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize(
    "origin, ok",
    [
        ("https://shop.example.com", True),
        ("https://SHOP.example.com", True),
        ("https://shop.example.com:443", False),
        ("http://shop.example.com", False),
        ("https://evil.example.com", False),
        ("https://shop.example.com.evil.example", False),
        ("null", False),
        ("", False),
        ("http://127.0.0.1:8000", True),
    ],
)
def test_origin_allowed(origin, ok):
    assert origin_allowed(origin, ["https://shop.example.com"], ("http://127.0.0.1:8000",)) is ok


def test_event_id_is_per_visitor_and_client_id(channel):
    provider = get_provider(channel)
    body = json.loads(payload_bytes("message__text"))
    first = provider.event_id(json.dumps(body).encode(), {})
    assert (
        provider.event_id(
            json.dumps({**body, "text": "edited", "at": "2026-03-02T11:00:00+00:00"}).encode(), {}
        )
        == first
    )
    assert provider.event_id(json.dumps({**body, "visitor": "v_other"}).encode(), {}) != first
    assert provider.event_id(payload_bytes("receipt__read"), {}) is None
