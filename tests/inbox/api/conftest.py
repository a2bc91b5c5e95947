from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import ConversationFactory


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
