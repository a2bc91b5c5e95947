from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import ConversationFactory, MessageFactory


@pytest.fixture
def conversation(org, channel, contact):
    """A WhatsApp conversation whose customer wrote a minute ago: the reply window is open."""
    now = timezone.now()
    conversation = ConversationFactory(
        organization=org,
        channel=channel,
        contact=contact,
        last_activity_at=now - timedelta(minutes=1),
        last_inbound_at=now - timedelta(minutes=1),
        last_message_preview="Where is my order?",
        unread_count=1,
    )
    MessageFactory(conversation=conversation, text="Where is my order?", created_at=now - timedelta(minutes=1))
    return conversation


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


@pytest.fixture
def other_client(other_owner):
    """An owner of another organization, logged in."""
    from django.test import Client

    c = Client()
    c.force_login(other_owner)
    return c
