from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from inbox.models import Conversation, Label, Message
from tests.factories import (
    ChannelFactory,
    ContactFactory,
    ContactIdentityFactory,
    ConversationFactory,
    LabelFactory,
    MessageFactory,
    TeamFactory,
    UserFactory,
)

from .conftest import error_of


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [c["id"] for c in response.json()["results"]]


@pytest.mark.django_db
def test_list_newest_activity_first_with_contract_fields(api, org, channel):
    now = timezone.now()
    older = ConversationFactory(organization=org, channel=channel, last_activity_at=now - timedelta(hours=2))
    newer = ConversationFactory(
        organization=org, channel=channel, last_activity_at=now - timedelta(minutes=5), last_inbound_at=None
    )
    older.labels.add(LabelFactory(organization=org, name="vip"), LabelFactory(organization=org, name="billing"))
    response = api.get("/api/v1/conversations/")
    assert _ids(response) == [newer.pk, older.pk]
    first, second = response.json()["results"]
    assert {
        "id", "channel", "contact", "status", "assignee", "team", "labels", "priority", "snoozed_until",
        "last_activity_at", "last_inbound_at", "unread_count", "last_message_preview", "reply_window_open",
        "created_at",
    } <= set(first)
    assert first["channel"] == channel.pk
    assert first["contact"] == {"id": newer.contact_id, "name": newer.contact.name}
    assert first["reply_window_open"] is False  # WhatsApp, no customer message yet
    assert second["reply_window_open"] is True
    assert second["labels"] == ["billing", "vip"]
    assert first["status"] == "open" and first["assignee"] is None and first["priority"] == "none"


@pytest.mark.django_db
def test_filters(api, org, owner, agent, channel):
    telegram = ChannelFactory(organization=org, kind="telegram")
    mine = ConversationFactory(organization=org, channel=channel, assignee=agent)
    theirs = ConversationFactory(organization=org, channel=channel, assignee=owner, status="resolved")
    nobodys = ConversationFactory(organization=org, channel=telegram)
    nobodys.labels.add(LabelFactory(organization=org, name="urgent"))

    assert set(_ids(api.get("/api/v1/conversations/"))) == {mine.pk, theirs.pk, nobodys.pk}
    assert _ids(api.get("/api/v1/conversations/", {"status": "resolved"})) == [theirs.pk]
    assert set(_ids(api.get("/api/v1/conversations/", {"channel": channel.pk}))) == {mine.pk, theirs.pk}
    assert _ids(api.get("/api/v1/conversations/", {"assignee": agent.pk})) == [mine.pk]
    assert _ids(api.get("/api/v1/conversations/", {"assignee": "none"})) == [nobodys.pk]
    assert _ids(api.get("/api/v1/conversations/", {"label": "urgent"})) == [nobodys.pk]
    assert _ids(api.get("/api/v1/conversations/", {"label": "nope"})) == []

    session = APIClient()
    session.force_login(agent)
    assert _ids(session.get("/api/v1/conversations/", {"assignee": "me"})) == [mine.pk]

    me_without_user = api.get("/api/v1/conversations/", {"assignee": "me"})
    assert me_without_user.status_code == 400
    assert "assignee" in error_of(me_without_user)["details"]
    bad = api.get("/api/v1/conversations/", {"assignee": "someone", "status": "closed"})
    assert bad.status_code == 400
    assert {"assignee", "status"} <= set(error_of(bad)["details"])


@pytest.mark.django_db
def test_search_matches_contact_name_identity_and_message_text(api, org, channel):
    by_name = ConversationFactory(organization=org, channel=channel, contact=ContactFactory(organization=org, name="Zed Zebra"))
    contact = ContactFactory(organization=org, name="Someone")
    ContactIdentityFactory(contact=contact, value="+447700900123")
    by_identity = ConversationFactory(organization=org, channel=channel, contact=contact)
    by_text = ConversationFactory(organization=org, channel=channel, contact=ContactFactory(organization=org, name="X"))
    MessageFactory(conversation=by_text, text="Where is my parcel #8812?")
    MessageFactory(conversation=by_text, text="Still waiting for parcel #8812")

    assert _ids(api.get("/api/v1/conversations/", {"q": "zebra"})) == [by_name.pk]
    assert _ids(api.get("/api/v1/conversations/", {"q": "7700900"})) == [by_identity.pk]
    assert _ids(api.get("/api/v1/conversations/", {"q": "parcel #8812"})) == [by_text.pk]


@pytest.mark.django_db
def test_cursor_pagination_walks_every_page(api, org, channel):
    now = timezone.now()
    created = [
        ConversationFactory(organization=org, channel=channel, last_activity_at=now - timedelta(minutes=i % 3))
        for i in range(7)
    ]
    expected = [c.pk for c in sorted(created, key=lambda c: (c.last_activity_at, c.pk), reverse=True)]
    seen, url, pages = [], "/api/v1/conversations/?limit=3", 0
    while url:
        body = api.get(url).json()
        seen += [c["id"] for c in body["results"]]
        url = body["next"]
        pages += 1
        assert pages <= 3
    assert pages == 3
    assert seen == expected


@pytest.mark.django_db
def test_list_query_count_does_not_grow_with_rows(api, org, channel, django_assert_max_num_queries):
    label = LabelFactory(organization=org)

    def add(n):
        for _ in range(n):
            conversation = ConversationFactory(organization=org, channel=ChannelFactory(organization=org))
            conversation.labels.add(label)

    add(2)
    with django_assert_max_num_queries(8) as few:
        assert len(api.get("/api/v1/conversations/").json()["results"]) == 2
    add(20)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(api.get("/api/v1/conversations/").json()["results"]) == 22


@pytest.mark.django_db
def test_detail(api, conversation):
    response = api.get(f"/api/v1/conversations/{conversation.pk}/")
    assert response.status_code == 200
    assert response.json()["contact"] == {"id": conversation.contact_id, "name": "Ada Lovelace"}
    assert response.json()["reply_window_open"] is True


def _system_texts(conversation) -> list[str]:
    return list(
        Message.objects.filter(conversation=conversation, type="system").order_by("id").values_list("text", flat=True)
    )


@pytest.mark.django_db
def test_patch_assign_resolve_reopen_snooze_record_system_messages(api, org, agent, conversation):
    url = f"/api/v1/conversations/{conversation.pk}/"
    team = TeamFactory(organization=org, name="Tier 2")
    response = api.patch(url, {"assignee": agent.pk, "team": team.pk, "priority": "high"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["assignee"], body["team"], body["priority"]) == (agent.pk, team.pk, "high")

    assert api.patch(url, {"status": "resolved"}, format="json").json()["status"] == "resolved"
    conversation.refresh_from_db()
    assert conversation.resolved_at is not None

    assert api.patch(url, {"status": "open"}, format="json").json()["status"] == "open"
    conversation.refresh_from_db()
    assert conversation.resolved_at is None

    until = timezone.now() + timedelta(hours=3)
    snoozed = api.patch(url, {"status": "snoozed", "snoozed_until": until.isoformat()}, format="json").json()
    assert snoozed["status"] == "snoozed"
    assert snoozed["snoozed_until"].startswith(until.strftime("%Y-%m-%dT%H:%M"))

    assert api.patch(url, {"assignee": None}, format="json").json()["assignee"] is None
    reopened = api.patch(url, {"status": "open"}, format="json").json()
    assert reopened["status"] == "open" and reopened["snoozed_until"] is None

    texts = _system_texts(conversation)
    assert texts == [
        "Assigned to agent@acme.test by the API",
        "Resolved by the API",
        "Reopened by the API",
        f"Snoozed until {until.isoformat()} by the API",
        "Unassigned by the API",
        "Reopened by the API",
    ]
    for message in Message.objects.filter(conversation=conversation, type="system"):
        assert message.private and message.status == "sent" and message.direction == "out"


@pytest.mark.django_db
def test_patch_by_a_session_user_names_them(org, agent, conversation):
    client = APIClient()
    client.force_login(agent)
    response = client.patch(f"/api/v1/conversations/{conversation.pk}/", {"assignee": agent.pk}, format="json")
    assert response.status_code == 200
    assert _system_texts(conversation) == ["Assigned to agent@acme.test by agent@acme.test"]
    messages = client.get(f"/api/v1/conversations/{conversation.pk}/messages/").json()["results"]
    assert messages[-1]["type"] == "system" and messages[-1]["private"] is True


@pytest.mark.django_db
def test_patch_labels_are_created_within_the_organization_and_replace_the_set(api, org, other_org, conversation):
    LabelFactory(organization=other_org, name="vip")
    url = f"/api/v1/conversations/{conversation.pk}/"
    response = api.patch(url, {"labels": ["vip", "billing", "vip"]}, format="json")
    assert response.status_code == 200
    assert response.json()["labels"] == ["billing", "vip"]
    assert set(Label.objects.filter(organization=org).values_list("name", flat=True)) == {"vip", "billing"}
    assert api.patch(url, {"labels": ["billing"]}, format="json").json()["labels"] == ["billing"]
    assert api.patch(url, {"labels": []}, format="json").json()["labels"] == []
    assert Label.objects.filter(organization=org).count() == 2


@pytest.mark.django_db
def test_patch_refusals(api, org, other_org, conversation):
    url = f"/api/v1/conversations/{conversation.pk}/"
    stranger = UserFactory(username="stranger@example.com")
    foreign_team = TeamFactory(organization=other_org)

    response = api.patch(url, {"assignee": stranger.pk, "team": foreign_team.pk}, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid"
    assert {"assignee", "team"} <= set(error["details"])

    response = api.patch(url, {"status": "snoozed"}, format="json")
    assert response.status_code == 400
    assert "snoozed_until" in error_of(response)["details"]

    past = (timezone.now() - timedelta(hours=1)).isoformat()
    response = api.patch(url, {"status": "snoozed", "snoozed_until": past}, format="json")
    assert response.status_code == 400

    future = (timezone.now() + timedelta(hours=1)).isoformat()
    response = api.patch(url, {"status": "open", "snoozed_until": future}, format="json")
    assert response.status_code == 400

    response = api.patch(url, {"priority": "meh", "status": "done"}, format="json")
    assert response.status_code == 400
    assert {"priority", "status"} <= set(error_of(response)["details"])

    conversation.refresh_from_db()
    assert (conversation.status, conversation.assignee_id, conversation.team_id) == ("open", None, None)
    assert not Message.objects.filter(conversation=conversation).exists()


@pytest.mark.django_db
def test_another_organizations_conversations_are_invisible(api, other_api, org, conversation):
    assert other_api.get("/api/v1/conversations/").json()["results"] == []
    assert other_api.get("/api/v1/conversations/", {"q": "Ada"}).json()["results"] == []
    assert other_api.get("/api/v1/conversations/", {"channel": conversation.channel_id}).json()["results"] == []
    assert other_api.get(f"/api/v1/conversations/{conversation.pk}/").status_code == 404
    response = other_api.patch(f"/api/v1/conversations/{conversation.pk}/", {"status": "resolved"}, format="json")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.OPEN
    assert _ids(api.get("/api/v1/conversations/")) == [conversation.pk]
