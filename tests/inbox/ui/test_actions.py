"""Agents' actions through the page's endpoints: the same services and rules as the API."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from inbox.models import Contact, ContactMerge, Conversation, Message
from tests.factories import (
    ChannelFactory,
    ContactFactory,
    ContactIdentityFactory,
    ConversationFactory,
    MembershipFactory,
    MessageFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _send(client, conversation, **data):
    return client.post(reverse("inbox:message-send", args=[conversation.pk]), data, HTTP_IDEMPOTENCY_KEY=data.pop("key", ""))


def test_reply_creates_a_pending_message_and_answers_its_html(agent_client, conversation, agent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = _send(agent_client, conversation, text="We are on it")
    assert response.status_code == 201
    message = Message.objects.get(text="We are on it")
    assert message.status == "pending" and message.sender == agent and not message.private
    html = response.content.decode()
    assert f'id="msg-{message.pk}"' in html and 'data-status="pending"' in html
    assert callbacks  # the send task and live events are queued on commit
    conversation.refresh_from_db()
    assert conversation.unread_count == 0 and conversation.first_response_at is not None


def test_same_idempotency_key_sends_once(agent_client, conversation):
    assert _send(agent_client, conversation, text="Once", key="k-1").status_code == 201
    assert _send(agent_client, conversation, text="Once", key="k-1").status_code == 201
    assert Message.objects.filter(text="Once").count() == 1


def test_private_note_is_never_sent(agent_client, conversation):
    response = _send(agent_client, conversation, text="Internal: VIP", private="1")
    assert response.status_code == 201
    note = Message.objects.get(text="Internal: VIP")
    assert note.private and note.status == "sent"
    assert "Private note" in response.content.decode()


def test_closed_window_refuses_free_text_with_the_reason_but_takes_a_template(agent_client, conversation):
    Conversation.objects.filter(pk=conversation.pk).update(last_inbound_at=timezone.now() - timedelta(hours=30))
    page = agent_client.get(reverse("inbox:conversation", args=[conversation.pk])).content.decode()
    assert 'id="template-picker"' in page and "reply window is closed" in page
    assert '<textarea name="text" id="composer-text" rows="3" disabled' in page

    refused = _send(agent_client, conversation, text="Hello?")
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "window_closed"
    sent = agent_client.post(
        reverse("inbox:message-send", args=[conversation.pk]),
        {"template_name": "order_update", "template_language": "pt_BR", "template_variable": ["Ada", "4417"]},
    )
    assert sent.status_code == 201
    message = Message.objects.get(type="template")
    assert message.content["template"] == {"name": "order_update", "language": "pt_BR", "variables": ["Ada", "4417"]}
    # A private note is still allowed.
    assert _send(agent_client, conversation, text="Customer went quiet", private="1").status_code == 201


def test_empty_message_is_refused(agent_client, conversation):
    response = _send(agent_client, conversation, text="   ")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_attachments_are_uploaded_multipart(agent_client, conversation):
    upload = SimpleUploadedFile("menu.pdf", b"%PDF-1.4 menu", content_type="application/pdf")
    response = agent_client.post(reverse("inbox:message-send", args=[conversation.pk]), {"text": "", "attachments": [upload]})
    assert response.status_code == 201
    message = Message.objects.get(type="media")
    attachment = message.attachments.get()
    assert attachment.status == "stored" and attachment.filename == "menu.pdf"
    assert reverse("inbox:attachment", args=[attachment.pk]) in response.content.decode()


def test_sms_composer_shows_the_segment_counter(agent_client, org, contact):
    sms = ChannelFactory(organization=org, kind="twilio_sms", name="SMS")
    conversation = ConversationFactory(organization=org, channel=sms, contact=contact)
    html = agent_client.get(reverse("inbox:conversation", args=[conversation.pk])).content.decode()
    assert 'id="sms-counter"' in html


def test_update_assigns_labels_priority_team_and_records_system_messages(agent_client, org, conversation, agent):
    team = TeamFactory(organization=org, name="Billing")
    url = reverse("inbox:conversation-update", args=[conversation.pk])
    assert agent_client.post(url, {"assignee": agent.pk}).status_code == 200
    assert agent_client.post(url, {"team": team.pk, "priority": "urgent"}).status_code == 200
    response = agent_client.post(url, {"labels_present": "1", "labels": ["vip"], "new_label": "refund"})
    assert response.status_code == 200
    conversation.refresh_from_db()
    assert conversation.assignee == agent and conversation.team == team and conversation.priority == "urgent"
    assert sorted(conversation.labels.values_list("name", flat=True)) == ["refund", "vip"]
    assert Message.objects.filter(conversation=conversation, type="system", text__startswith="Assigned to").exists()
    assert "refund" in response.content.decode()
    assert agent_client.post(url, {"assignee": ""}).status_code == 200
    conversation.refresh_from_db()
    assert conversation.assignee is None


def test_update_refuses_a_non_member_assignee_and_a_past_snooze(agent_client, conversation):
    url = reverse("inbox:conversation-update", args=[conversation.pk])
    stranger = UserFactory()
    response = agent_client.post(url, {"assignee": stranger.pk})
    assert response.status_code == 400 and "assignee" in response.json()["error"]["details"]
    past = (timezone.now() - timedelta(hours=1)).isoformat()
    response = agent_client.post(url, {"snoozed_until": past})
    assert response.status_code == 400 and "snoozed_until" in response.json()["error"]["details"]
    naive = agent_client.post(url, {"snoozed_until": "2030-01-01T09:00"})
    assert naive.status_code == 400


def test_resolve_reopen_snooze(agent_client, conversation):
    url = reverse("inbox:conversation-update", args=[conversation.pk])
    assert agent_client.post(url, {"status": "resolved"}).status_code == 200
    conversation.refresh_from_db()
    assert conversation.status == "resolved" and conversation.resolved_at
    assert "Reopen" in agent_client.get(reverse("inbox:header-fragment", args=[conversation.pk])).content.decode()
    assert agent_client.post(url, {"status": "open"}).status_code == 200
    until = timezone.now() + timedelta(hours=3)
    assert agent_client.post(url, {"snoozed_until": until.isoformat()}).status_code == 200
    conversation.refresh_from_db()
    assert conversation.status == "snoozed" and abs((conversation.snoozed_until - until).total_seconds()) < 1
    texts = list(Message.objects.filter(conversation=conversation, type="system").values_list("text", flat=True))
    assert any(t.startswith("Resolved by") for t in texts) and any(t.startswith("Reopened by") for t in texts)
    assert any(t.startswith("Snoozed until") for t in texts)


def test_mark_read_and_unread(agent_client, conversation):
    assert agent_client.post(reverse("inbox:conversation-read", args=[conversation.pk])).json()["unread_count"] == 0
    assert agent_client.post(reverse("inbox:conversation-unread", args=[conversation.pk])).json()["unread_count"] == 1
    conversation.refresh_from_db()
    assert conversation.unread_count == 1


def test_retry_puts_a_failed_message_back_in_the_queue(agent_client, conversation, agent):
    failed = MessageFactory(conversation=conversation, direction="out", status="failed", sender=agent,
                            error_code="131026", error_reason="Undeliverable")
    html = agent_client.get(reverse("inbox:conversation", args=[conversation.pk])).content.decode()
    assert "Undeliverable" in html and reverse("inbox:message-retry", args=[failed.pk]) in html
    response = agent_client.post(reverse("inbox:message-retry", args=[failed.pk]))
    assert response.status_code == 200
    failed.refresh_from_db()
    assert failed.status == "pending" and failed.error_code == ""
    again = agent_client.post(reverse("inbox:message-retry", args=[failed.pk]))
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_retryable"


def test_bulk_actions(agent_client, org, agent, channel):
    conversations = [ConversationFactory(organization=org, channel=channel, unread_count=2) for _ in range(3)]
    ids = [c.pk for c in conversations]
    url = reverse("inbox:conversation-bulk")
    assert agent_client.post(url, {"ids": ids, "action": "assign", "value": agent.pk}).json() == {"updated": 3}
    assert agent_client.post(url, {"ids": ids[:2], "action": "label", "value": "vip"}).json() == {"updated": 2}
    assert agent_client.post(url, {"ids": ids, "action": "read"}).json() == {"updated": 3}
    assert agent_client.post(url, {"ids": ids[:1], "action": "resolve"}).json() == {"updated": 1}
    assert agent_client.post(url, {"ids": ids, "action": "priority", "value": "high"}).json() == {"updated": 3}
    rows = {c.pk: c for c in Conversation.objects.filter(pk__in=ids).prefetch_related("labels")}
    assert all(c.assignee_id == agent.pk and c.unread_count == 0 and c.priority == "high" for c in rows.values())
    assert [c.status for c in (rows[i] for i in ids)] == ["resolved", "open", "open"]
    assert [sorted(lbl.name for lbl in rows[i].labels.all()) for i in ids] == [["vip"], ["vip"], []]
    bad = agent_client.post(url, {"ids": ids, "action": "delete"})
    assert bad.status_code == 400
    assert agent_client.post(url, {"action": "resolve"}).status_code == 400


def test_contact_edit_merge_and_unmerge(agent_client, org, conversation, contact):
    url = reverse("inbox:contact-edit", args=[contact.pk])
    response = agent_client.post(url, {"name": "Ada King", "notes": "Prefers e-mail", "attributes": "plan: pro\ncity=London"})
    assert response.status_code == 200
    contact.refresh_from_db()
    assert (contact.name, contact.notes, contact.attributes) == ("Ada King", "Prefers e-mail", {"plan": "pro", "city": "London"})
    assert agent_client.post(url, {"attributes": "no separator"}).status_code == 400

    other = ContactFactory(organization=org, name="Ada (Telegram)")
    ContactIdentityFactory(contact=other, kind="telegram", value="5550001")
    telegram = ChannelFactory(organization=org, kind="telegram")
    other_conversation = ConversationFactory(organization=org, channel=telegram, contact=other)
    candidates = agent_client.get(reverse("inbox:merge-candidates", args=[contact.pk]) + "?q=5550001").content.decode()
    assert "Ada (Telegram)" in candidates

    merged = agent_client.post(reverse("inbox:contact-merge", args=[contact.pk]), {"other": other.pk})
    assert merged.status_code == 200
    html = merged.content.decode()
    assert "5550001" in html and "Unmerge" in html  # identities on every channel, the merge can be undone
    assert Conversation.objects.get(pk=other_conversation.pk).contact_id == contact.pk
    merge = ContactMerge.objects.get()
    again = agent_client.post(reverse("inbox:contact-merge", args=[contact.pk]), {"other": other.pk})
    assert again.status_code == 409

    undone = agent_client.post(reverse("inbox:contact-unmerge", args=[contact.pk]), {"merge": merge.pk})
    assert undone.status_code == 200
    assert Conversation.objects.get(pk=other_conversation.pk).contact_id == other.pk
    assert Contact.objects.get(pk=other.pk).merged_into_id is None


def test_presence_shows_who_else_views_the_conversation(client, agent_client, org, agent, conversation):
    from django.test import Client

    colleague = UserFactory(username="bo@acme.test", first_name="Bo", last_name="Berg")
    MembershipFactory(user=colleague, organization=org)
    other = Client()
    other.force_login(colleague)
    url = reverse("inbox:presence", args=[conversation.pk])
    assert agent_client.post(url).json() == {"viewers": []}
    assert other.post(url, {"composing": "1"}).json()["viewers"] == [
        {"id": agent.pk, "name": agent.username, "composing": False}
    ]
    assert agent_client.post(url).json()["viewers"] == [{"id": colleague.pk, "name": "Bo Berg", "composing": True}]
    assert other.post(url, {"leave": "1"}).status_code == 204
    assert agent_client.post(url).json() == {"viewers": []}
