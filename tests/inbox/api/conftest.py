from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import ChannelFactory, ContactFactory, ContactIdentityFactory, ConversationFactory


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def channel(org):
    return ChannelFactory(organization=org, kind="whatsapp_cloud", name="Support WhatsApp")


@pytest.fixture
def contact(org):
    contact = ContactFactory(organization=org, name="Ada Lovelace")
    ContactIdentityFactory(contact=contact, kind="phone", value="+14155550123")
    return contact


@pytest.fixture
def conversation(org, channel, contact):
    """A WhatsApp conversation whose customer wrote a minute ago: the reply window is open."""
    now = timezone.now()
    return ConversationFactory(
        organization=org,
        channel=channel,
        contact=contact,
        last_activity_at=now - timedelta(minutes=1),
        last_inbound_at=now - timedelta(minutes=1),
    )


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]
