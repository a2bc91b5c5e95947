"""The list and the conversation pages run a bounded number of SQL queries whatever the page size."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from inbox.models import Attachment
from tests.factories import (
    ChannelFactory,
    ContactIdentityFactory,
    ConversationFactory,
    LabelFactory,
    MessageFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _conversations(org, n, agent):
    team = TeamFactory(organization=org, name=f"Team {n}")
    labels = [LabelFactory(organization=org, name=f"l{n}-{i}") for i in range(2)]
    channels = [ChannelFactory(organization=org, kind=kind) for kind in ("whatsapp_cloud", "telegram", "twilio_sms")]
    now = timezone.now()
    for i in range(n):
        identity = ContactIdentityFactory(contact__organization=org, contact__name="" if i % 2 else f"Customer {i}")
        conversation = ConversationFactory(
            organization=org, channel=channels[i % 3], contact=identity.contact, assignee=agent if i % 2 else None,
            team=team, last_activity_at=now - timedelta(minutes=i), unread_count=i % 3,
        )
        conversation.labels.set(labels)
        MessageFactory(conversation=conversation, text=f"order {i} where is it")


def _count(client, url, django_assert_max_num_queries, limit):
    client.get(reverse("inbox:dashboard"))  # the session's first request stores the organization: not counted
    with django_assert_max_num_queries(limit) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("path", ["inbox:home", "inbox:list-fragment"])
def test_list_query_count_does_not_grow_with_rows(agent_client, org, agent, path, django_assert_max_num_queries):
    url = reverse(path) + "?status=all"
    _conversations(org, 3, agent)
    small = _count(agent_client, url, django_assert_max_num_queries, 25)
    _conversations(org, 40, agent)
    large = _count(agent_client, url, django_assert_max_num_queries, 25)
    assert large == small
    assert agent_client.get(url).content.decode().count('class="conv-row') == 43


def test_search_query_count_is_constant(agent_client, org, agent, django_assert_max_num_queries):
    _conversations(org, 30, agent)
    url = reverse("inbox:list-fragment") + "?status=all&q=order"
    _count(agent_client, url, django_assert_max_num_queries, 12)


def test_conversation_page_query_count_does_not_grow_with_messages(
    agent_client, conversation, agent, django_assert_max_num_queries
):
    url = reverse("inbox:conversation", args=[conversation.pk])
    pane = reverse("inbox:pane-fragment", args=[conversation.pk])
    small = _count(agent_client, url, django_assert_max_num_queries, 40)
    small_pane = _count(agent_client, pane, django_assert_max_num_queries, 20)
    other = UserFactory()
    for i in range(60):
        message = MessageFactory(conversation=conversation, direction="out", sender=agent if i % 2 else other,
                                 status="read", text=f"reply {i}")
        attachment = Attachment(organization=conversation.organization, message=message, filename=f"f{i}.png",
                                content_type="image/png", status=Attachment.Status.STORED)
        attachment.file.save(f"f{i}.png", ContentFile(b"png"), save=True)
    assert _count(agent_client, url, django_assert_max_num_queries, 40) == small
    assert _count(agent_client, pane, django_assert_max_num_queries, 20) == small_pane
    thread = reverse("inbox:thread-fragment", args=[conversation.pk])
    _count(agent_client, thread, django_assert_max_num_queries, 10)


def test_contact_panel_and_dashboard_are_bounded(agent_client, org, agent, conversation, django_assert_max_num_queries):
    _conversations(org, 20, agent)
    _count(agent_client, reverse("inbox:contact-fragment", args=[conversation.contact_id]), django_assert_max_num_queries, 12)
    _count(agent_client, reverse("inbox:dashboard"), django_assert_max_num_queries, 15)


def test_conversation_page_query_count_does_not_grow_with_conversations(
    agent_client, org, agent, conversation, django_assert_max_num_queries
):
    url = reverse("inbox:conversation", args=[conversation.pk])
    small = _count(agent_client, url, django_assert_max_num_queries, 25)
    _conversations(org, 40, agent)
    assert _count(agent_client, url, django_assert_max_num_queries, 25) == small


def test_conversation_page_reads_the_sidebar_once(agent_client, conversation, django_assert_max_num_queries):
    agent_client.get(reverse("inbox:dashboard"))
    with django_assert_max_num_queries(25) as captured:
        assert agent_client.get(reverse("inbox:conversation", args=[conversation.pk])).status_code == 200
    sql = [q["sql"] for q in captured.captured_queries]
    # The sidebar's four queries (teams, channels, labels, members, in their menus' order), once each.
    for shape in (
        'FROM "organizations_team" WHERE',
        'FROM "providers_channel" WHERE',
        'FROM "inbox_label" WHERE',
        'ORDER BY "auth_user"."first_name" ASC',
    ):
        assert sum(shape in s for s in sql) == 1, shape
