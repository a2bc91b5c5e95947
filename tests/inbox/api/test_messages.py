from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from inbox.models import Attachment, Contact, ContactIdentity, Conversation, Message
from tests.factories import ChannelFactory, ContactIdentityFactory, ConversationFactory, MessageFactory

from .conftest import error_of

TEMPLATE = {"name": "order_update", "language": "en_US", "variables": ["Ada", "#8812"]}


def _post(api, conversation, payload, **extra):
    return api.post(f"/api/v1/conversations/{conversation.pk}/messages/", payload, format="json", **extra)


# --- GET /conversations/{id}/messages/ --------------------------------------------------------------------
@pytest.mark.django_db
def test_list_is_oldest_first_and_walks_every_page(api, conversation):
    now = timezone.now()
    created = [
        MessageFactory(conversation=conversation, created_at=now - timedelta(minutes=10 - i % 4)) for i in range(5)
    ]
    expected = [m.pk for m in sorted(created, key=lambda m: (m.created_at, m.pk))]
    seen, url, pages = [], f"/api/v1/conversations/{conversation.pk}/messages/?limit=2", 0
    while url:
        body = api.get(url).json()
        seen += [m["id"] for m in body["results"]]
        url = body["next"]
        pages += 1
    assert pages == 3
    assert seen == expected


@pytest.mark.django_db
def test_message_fields(api, conversation):
    message = MessageFactory(
        conversation=conversation,
        text="Hi!",
        content={"reply_to": "wamid.1", "_internal": "bookkeeping"},
    )
    Attachment.objects.create(
        organization=conversation.organization,
        message=message,
        filename="photo.jpg",
        content_type="image/jpeg",
        size=1234,
        source_url="https://cdn.example.com/photo.jpg",
    )
    body = api.get(f"/api/v1/messages/{message.pk}/").json()
    assert {
        "id", "conversation", "direction", "private", "type", "text", "content", "attachments", "status", "error",
        "sender", "created_at", "sent_at", "delivered_at", "read_at", "platform_message_id",
    } <= set(body)
    assert body["conversation"] == conversation.pk
    assert (body["direction"], body["type"], body["status"], body["private"]) == ("in", "text", "received", False)
    assert body["content"] == {"reply_to": "wamid.1"}
    assert body["error"] is None
    assert body["attachments"] == [
        {
            "id": message.attachments.get().pk,
            "filename": "photo.jpg",
            "content_type": "image/jpeg",
            "size": 1234,
            "url": "https://cdn.example.com/photo.jpg",
            "status": "pending",
        }
    ]


@pytest.mark.django_db
def test_failed_message_carries_error_and_can_be_retried(api, conversation):
    message = MessageFactory(
        conversation=conversation,
        direction="out",
        status="failed",
        error_code="131047",
        error_reason="Re-engagement message: more than 24 hours have passed.",
    )
    body = api.get(f"/api/v1/messages/{message.pk}/").json()
    assert body["status"] == "failed"
    assert body["error"] == {"code": "131047", "reason": "Re-engagement message: more than 24 hours have passed."}

    response = api.post(f"/api/v1/messages/{message.pk}/retry/")
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert response.json()["error"] is None
    message.refresh_from_db()
    assert message.status == "pending"

    again = api.post(f"/api/v1/messages/{message.pk}/retry/")
    assert again.status_code == 409
    assert error_of(again)["code"] == "not_retryable"


# --- POST /conversations/{id}/messages/ -------------------------------------------------------------------
@pytest.mark.django_db
def test_post_text_answers_201_pending_and_queues_the_send(api, conversation, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = _post(api, conversation, {"text": "Your parcel ships today."})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending"
    assert (body["direction"], body["type"], body["private"], body["text"]) == ("out", "text", False, "Your parcel ships today.")
    assert body["conversation"] == conversation.pk
    assert body["sender"] is None
    message = Message.objects.get(pk=body["id"])
    assert message.content["to"] == "+14155550123"
    assert callbacks, "the send task is queued on commit"


@pytest.mark.django_db
def test_post_private_note_is_not_sent(api, agent, conversation):
    client = APIClient()
    client.force_login(agent)
    response = _post(client, conversation, {"text": "Customer is a VIP", "private": True})
    assert response.status_code == 201
    body = response.json()
    assert body["private"] is True and body["status"] == "sent" and body["sender"] == agent.pk


@pytest.mark.django_db
def test_post_template(api, conversation):
    response = _post(api, conversation, {"template": TEMPLATE})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["type"] == "template"
    assert body["content"]["template"] == TEMPLATE


@pytest.mark.django_db
def test_post_refuses_empty_and_malformed_bodies(api, conversation):
    empty = _post(api, conversation, {})
    assert empty.status_code == 400
    assert error_of(empty)["code"] == "empty_message"
    bad_template = _post(api, conversation, {"template": {"name": "x"}})
    assert bad_template.status_code == 400
    assert "template" in error_of(bad_template)["details"]
    private_template = _post(api, conversation, {"template": TEMPLATE, "private": True})
    assert private_template.status_code == 400
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_repeated_idempotency_key_returns_the_first_message_and_creates_one_row(api, conversation):
    first = _post(api, conversation, {"text": "Once"}, HTTP_IDEMPOTENCY_KEY="order-8812-shipped")
    second = _post(api, conversation, {"text": "Once"}, HTTP_IDEMPOTENCY_KEY="order-8812-shipped")
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json() == first.json()
    assert Message.objects.filter(conversation=conversation).count() == 1
    third = _post(api, conversation, {"text": "Once"}, HTTP_IDEMPOTENCY_KEY="another-key")
    assert third.status_code == 201
    assert Message.objects.filter(conversation=conversation).count() == 2
    too_long = _post(api, conversation, {"text": "x"}, HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert too_long.status_code == 400


@pytest.mark.django_db
def test_whatsapp_free_text_outside_the_window_is_refused_and_a_template_works(api, conversation):
    Conversation.objects.filter(pk=conversation.pk).update(last_inbound_at=timezone.now() - timedelta(hours=25))
    response = _post(api, conversation, {"text": "Are you there?"})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "window_closed"
    assert error["details"]["template_required"] is True
    assert not Message.objects.exists()
    assert _post(api, conversation, {"template": TEMPLATE}).status_code == 201


@pytest.mark.django_db
def test_opted_out_contact_is_refused(api, conversation):
    ContactIdentity.objects.filter(contact=conversation.contact).update(opted_out_at=timezone.now())
    response = _post(api, conversation, {"text": "Hello"})
    assert response.status_code == 422
    assert error_of(response)["code"] == "contact_opted_out"
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_attachments_as_multipart_files(api, conversation, settings):
    upload = SimpleUploadedFile("invoice.pdf", b"%PDF-1.4 test", content_type="application/pdf")
    response = api.post(
        f"/api/v1/conversations/{conversation.pk}/messages/",
        {"text": "Your invoice", "attachments": [upload]},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["type"] == "media"
    [attachment] = body["attachments"]
    assert (attachment["filename"], attachment["content_type"], attachment["size"]) == (
        "invoice.pdf",
        "application/pdf",
        13,
    )
    assert attachment["status"] == "stored"
    # A signed, expiring link (no public /media/ URL): it serves the file without a session.
    assert attachment["url"].startswith("http://testserver/files/")
    stored = Attachment.objects.get(pk=attachment["id"])
    assert stored.file.read() == b"%PDF-1.4 test"
    download = APIClient().get(attachment["url"].removeprefix("http://testserver"))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"%PDF-1.4 test"


@pytest.mark.django_db
def test_attachments_as_urls(api, conversation):
    response = _post(
        api,
        conversation,
        {"attachments": [{"url": "https://cdn.example.com/a.png", "content_type": "image/png", "filename": "a.png"}]},
    )
    assert response.status_code == 201, response.content
    [attachment] = response.json()["attachments"]
    assert attachment["url"] == "https://cdn.example.com/a.png"
    assert attachment["status"] == "pending"
    bad = _post(api, conversation, {"attachments": [{"url": "not a url"}]})
    assert bad.status_code == 400
    assert "attachments" in error_of(bad)["details"]


# --- POST /messages/ --------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_send_to_a_new_number_creates_contact_identity_and_conversation(api, org):
    sms = ChannelFactory(organization=org, kind="twilio_sms")
    response = api.post(
        "/api/v1/messages/", {"channel": sms.pk, "to": "+1 (415) 555-0199", "text": "Welcome!"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending"
    identity = ContactIdentity.objects.get(organization=org, kind="phone", value="+14155550199")
    assert identity.channel_id == sms.pk
    conversation = Conversation.objects.get(pk=body["conversation"])
    assert (conversation.channel_id, conversation.contact_id, conversation.thread_key) == (sms.pk, identity.contact_id, "")

    again = api.post("/api/v1/messages/", {"channel": sms.pk, "to": "+14155550199", "text": "Again"}, format="json")
    assert again.status_code == 201
    assert again.json()["conversation"] == conversation.pk
    assert Contact.objects.filter(organization=org).count() == 1


@pytest.mark.django_db
def test_send_to_an_existing_identity_uses_its_contact(api, org, conversation):
    response = api.post(
        "/api/v1/messages/",
        {"channel": conversation.channel_id, "to": "+14155550123", "text": "Following up"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["conversation"] == conversation.pk


@pytest.mark.django_db
def test_new_whatsapp_conversation_needs_a_template_and_nothing_is_kept_on_refusal(api, org, channel):
    response = api.post("/api/v1/messages/", {"channel": channel.pk, "to": "+447911123456", "text": "Hi"}, format="json")
    assert response.status_code == 422
    assert error_of(response)["code"] == "window_closed"
    assert not Contact.objects.filter(organization=org).exists()
    assert not Conversation.objects.exists()

    response = api.post(
        "/api/v1/messages/", {"channel": channel.pk, "to": "+447911123456", "template": TEMPLATE}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["type"] == "template"
    assert ContactIdentity.objects.get(organization=org).value == "+447911123456"


@pytest.mark.django_db
def test_send_normalizes_recipients_by_channel_kind(api, org):
    email = ChannelFactory(organization=org, kind="email")
    telegram = ChannelFactory(organization=org, kind="telegram")
    twilio_wa = ChannelFactory(organization=org, kind="twilio_whatsapp")
    cases = [
        (email, " Ada@Example.COM ", "email", "ada@example.com"),
        (telegram, "123456789", "telegram", "123456789"),
    ]
    for channel, to, kind, value in cases:
        response = api.post("/api/v1/messages/", {"channel": channel.pk, "to": to, "text": "Hi"}, format="json")
        assert response.status_code == 201, response.content
        assert ContactIdentity.objects.filter(organization=org, kind=kind, value=value).exists()
    response = api.post(
        "/api/v1/messages/", {"channel": twilio_wa.pk, "to": "whatsapp:+14155550100", "template": TEMPLATE}, format="json"
    )
    assert response.status_code == 201, response.content
    assert ContactIdentity.objects.filter(organization=org, kind="phone", value="+14155550100").exists()


@pytest.mark.django_db
def test_send_refuses_bad_recipients_and_opted_out_contacts(api, org):
    sms = ChannelFactory(organization=org, kind="twilio_sms")
    email = ChannelFactory(organization=org, kind="email")
    for channel, to in [(sms, "4155550199"), (sms, "+1 000"), (email, "not-an-address"), (sms, "")]:
        response = api.post("/api/v1/messages/", {"channel": channel.pk, "to": to, "text": "Hi"}, format="json")
        assert response.status_code == 400, (to, response.content)
        assert "to" in error_of(response)["details"]
    ContactIdentityFactory(contact__organization=org, kind="phone", value="+14155550177", opted_out_at=timezone.now())
    response = api.post("/api/v1/messages/", {"channel": sms.pk, "to": "+14155550177", "text": "Hi"}, format="json")
    assert response.status_code == 422
    assert error_of(response)["code"] == "contact_opted_out"
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_send_with_repeated_idempotency_key(api, org):
    sms = ChannelFactory(organization=org, kind="twilio_sms")
    payload = {"channel": sms.pk, "to": "+14155550199", "text": "Once"}
    first = api.post("/api/v1/messages/", payload, format="json", HTTP_IDEMPOTENCY_KEY="welcome-1")
    second = api.post("/api/v1/messages/", payload, format="json", HTTP_IDEMPOTENCY_KEY="welcome-1")
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    assert Message.objects.count() == 1


# --- tenant isolation -------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_another_organizations_messages_are_invisible(api, other_api, org, other_org, conversation):
    message = MessageFactory(conversation=conversation, direction="out", status="failed", error_code="x")
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    assert other_api.get(url).status_code == 404
    assert other_api.post(url, {"text": "Injected"}, format="json").status_code == 404
    assert other_api.get(f"/api/v1/messages/{message.pk}/").status_code == 404
    assert other_api.post(f"/api/v1/messages/{message.pk}/retry/").status_code == 404
    response = other_api.post(
        "/api/v1/messages/", {"channel": conversation.channel_id, "to": "+14155550123", "text": "Hi"}, format="json"
    )
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    # The same number on the other organization's own channel is a different contact.
    theirs = ChannelFactory(organization=other_org, kind="twilio_sms")
    response = other_api.post("/api/v1/messages/", {"channel": theirs.pk, "to": "+14155550123", "text": "Hi"}, format="json")
    assert response.status_code == 201
    assert Conversation.objects.get(pk=response.json()["conversation"]).organization == other_org
    assert ContactIdentity.objects.filter(value="+14155550123").count() == 2
    message.refresh_from_db()
    assert message.status == "failed"
    assert [m["id"] for m in api.get(url).json()["results"]] == [message.pk]


@pytest.mark.django_db
def test_repeated_idempotency_key_of_another_organization_is_not_shared(api, other_api, org, other_org, conversation):
    theirs = ConversationFactory(organization=other_org, channel=ChannelFactory(organization=other_org, kind="telegram"))
    ContactIdentityFactory(contact=theirs.contact, kind="telegram", value="42")
    ours = _post(api, conversation, {"text": "Ours"}, HTTP_IDEMPOTENCY_KEY="same-key")
    response = other_api.post(
        f"/api/v1/conversations/{theirs.pk}/messages/", {"text": "Theirs"}, format="json", HTTP_IDEMPOTENCY_KEY="same-key"
    )
    assert (ours.status_code, response.status_code) == (201, 201)
    assert response.json()["id"] != ours.json()["id"]
    assert response.json()["text"] == "Theirs"
