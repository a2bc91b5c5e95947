from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from inbox import selectors_ui
from inbox.models import Conversation, Message
from inbox.services.snooze import conversation_snooze_wake
from inbox.tasks_ui import conversation_snooze_wake_task
from tests.factories import (
    ChannelFactory,
    ContactFactory,
    ContactIdentityFactory,
    ConversationFactory,
    LabelFactory,
    MessageFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db


def _list(org, user, **params):
    return selectors_ui.inbox_conversation_list(
        organization=org, user=user, filters=selectors_ui.list_filters_from({"status": "all", **params})
    )


def test_search_matches_message_words_names_and_identity_substrings(org, other_org, agent, channel):
    bruno = ConversationFactory(organization=org, channel=channel, contact=ContactFactory(organization=org, name="Bruno Lima"))
    MessageFactory(conversation=bruno, text="The parcel was delivered to the wrong address")
    ContactIdentityFactory(contact=bruno.contact, value="+351912345678")
    carla = ConversationFactory(organization=org, channel=channel, contact=ContactFactory(organization=org, name="Carla"))
    MessageFactory(conversation=carla, text="Refund please")
    foreign = ConversationFactory(organization=other_org, contact=ContactFactory(organization=other_org, name="Bruno Other"))
    MessageFactory(conversation=foreign, text="parcel delivered")

    assert [c.pk for c in _list(org, agent, q="parcel")] == [bruno.pk]
    assert [c.pk for c in _list(org, agent, q="deliv wrong")] == [bruno.pk]  # every word, as a prefix
    assert [c.pk for c in _list(org, agent, q="bruno")] == [bruno.pk]
    assert [c.pk for c in _list(org, agent, q="912345")] == [bruno.pk]  # inside a phone number
    assert [c.pk for c in _list(org, agent, q="refund")] == [carla.pk]
    assert _list(org, agent, q="nothing-like-this") == []
    assert _list(org, agent, q="' & | ! :*") == []  # operators never reach to_tsquery


def test_search_uses_full_text_search_on_postgresql(org, agent, channel, django_assert_max_num_queries):
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        _list(org, agent, q="parcel")
    sql = captured.captured_queries[0]["sql"]
    if connection.vendor == "postgresql":
        assert "to_tsvector" in sql and "to_tsquery" in sql
    else:
        assert "LIKE" in sql.upper()


def test_views_and_filters(org, agent, channel):
    team = TeamFactory(organization=org)
    label = LabelFactory(organization=org, name="vip")
    telegram = ChannelFactory(organization=org, kind="telegram")
    mine = ConversationFactory(organization=org, channel=channel, assignee=agent, priority="high")
    mine.labels.add(label)
    unassigned = ConversationFactory(organization=org, channel=telegram, team=team)
    resolved = ConversationFactory(organization=org, channel=channel, status="resolved")

    def ids(**params):
        return {c.pk for c in selectors_ui.inbox_conversation_list(
            organization=org, user=agent, filters=selectors_ui.list_filters_from(params))}

    assert ids() == {mine.pk, unassigned.pk}  # open, all
    assert ids(view="mine") == {mine.pk}
    assert ids(view="unassigned") == {unassigned.pk}
    assert ids(view=f"team-{team.pk}") == {unassigned.pk}
    assert ids(status="resolved") == {resolved.pk}
    assert ids(status="all", channel=str(telegram.pk)) == {unassigned.pk}
    assert ids(label="vip") == {mine.pk}
    assert ids(priority="high") == {mine.pk}
    assert ids(view="bogus", status="bogus", priority="bogus") == {mine.pk, unassigned.pk}
    counts = selectors_ui.view_counts(organization=org, user=agent)
    assert (counts["mine"], counts["unassigned"], counts["all"], counts["teams"]) == (1, 1, 2, {team.pk: 1})


def test_list_pages_with_a_cursor(agent_client, org, channel):
    now = timezone.now()
    for i in range(selectors_ui.PAGE_SIZE + 5):
        ConversationFactory(organization=org, channel=channel, last_activity_at=now - timedelta(minutes=i))
    first = agent_client.get(reverse("inbox:list-fragment")).content.decode()
    assert first.count('class="conv-row') == selectors_ui.PAGE_SIZE and "data-more=" in first
    cursor = first.split('data-more="')[1].split('"')[0]
    second = agent_client.get(reverse("inbox:list-fragment"), {"before": cursor}).content.decode()
    assert second.count('class="conv-row') == 5 and "data-more=" not in second


def test_thread_loads_older_pages(agent_client, conversation):
    start = timezone.now() - timedelta(days=1)
    for i in range(selectors_ui.THREAD_PAGE + 10):
        MessageFactory(conversation=conversation, text=f"message number {i:03d}", created_at=start + timedelta(seconds=i))
    page = agent_client.get(reverse("inbox:conversation", args=[conversation.pk])).content.decode()
    assert "message number 049" in page and "message number 000" not in page
    before = page.split('class="load-older" data-before="')[1].split('"')[0]
    older = agent_client.get(reverse("inbox:thread-fragment", args=[conversation.pk]), {"before": before}).content.decode()
    assert "message number 000" in older and "message number 049" not in older
    assert "load-older" not in older


def test_reply_window_time_left_in_the_list(agent_client, org, channel, contact):
    ConversationFactory(organization=org, channel=channel, contact=contact,
                        last_inbound_at=timezone.now() - timedelta(hours=20, minutes=30))
    html = agent_client.get(reverse("inbox:list-fragment")).content.decode()
    assert "3h 29m left" in html or "3h 30m left" in html
    Conversation.objects.update(last_inbound_at=timezone.now() - timedelta(hours=25))
    assert "Window closed" in agent_client.get(reverse("inbox:list-fragment")).content.decode()


def test_dashboard_counts_waiting_volume_and_median_first_response(org, other_org, agent, channel):
    now = timezone.now().replace(hour=12)  # "today" holds every message below, whatever the clock says
    waiting = ConversationFactory(organization=org, channel=channel, last_inbound_at=now - timedelta(minutes=50))
    MessageFactory(conversation=waiting, text="hello?", created_at=now - timedelta(minutes=50))
    MessageFactory(conversation=waiting, text="anyone?", created_at=now - timedelta(minutes=40))
    for minutes in (2, 4, 30):
        answered = ConversationFactory(organization=org, channel=channel, assignee=agent,
                                       first_response_at=now - timedelta(minutes=60 - minutes))
        MessageFactory(conversation=answered, text="q", created_at=now - timedelta(minutes=60))
        MessageFactory(conversation=answered, direction="out", status="sent", text="a",
                       created_at=now - timedelta(minutes=60 - minutes))
    ConversationFactory(organization=org, channel=channel, status="snoozed", snoozed_until=now + timedelta(hours=1))
    ConversationFactory(organization=other_org)

    dash = selectors_ui.dashboard(organization=org, now=now)
    assert (dash.open, dash.unassigned, dash.snoozed) == (4, 1, 1)
    assert [c.pk for c in dash.waiting] == [waiting.pk]
    assert abs((dash.waiting[0].waiting_since - (now - timedelta(minutes=50))).total_seconds()) < 1
    assert dash.median_first_response == timedelta(minutes=4) and dash.first_response_sample == 3
    [row] = dash.volume
    assert (row["inbound"], row["outbound"], row["total"]) == (5, 3, 8)


def test_snooze_wake_reopens_due_conversations_only(org, channel):
    now = timezone.now()
    due = ConversationFactory(organization=org, channel=channel, status="snoozed", snoozed_until=now - timedelta(minutes=1))
    later = ConversationFactory(organization=org, channel=channel, status="snoozed", snoozed_until=now + timedelta(hours=1))
    assert conversation_snooze_wake(now=now) == 1
    due.refresh_from_db()
    later.refresh_from_db()
    assert due.status == "open" and due.snoozed_until is None
    assert later.status == "snoozed"
    assert Message.objects.filter(conversation=due, type="system", text__startswith="Snooze ended").count() == 1
    assert conversation_snooze_wake(now=now) == 0  # never woken twice
    Conversation.objects.filter(pk=later.pk).update(snoozed_until=now - timedelta(seconds=1))
    assert conversation_snooze_wake_task.apply().get() == 1
