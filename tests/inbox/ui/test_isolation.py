"""An agent of organization B never sees or touches organization A's inbox: every page, fragment,
download and action answers 404, and lists never show A's rows."""

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from inbox.models import Attachment, Conversation, Message
from tests.factories import ContactFactory, MessageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed_message(conversation, agent):
    return MessageFactory(conversation=conversation, direction="out", status="failed", sender=agent,
                          error_code="131026", error_reason="Receiver is incapable of receiving this message")


@pytest.fixture
def stored_attachment(conversation):
    message = MessageFactory(conversation=conversation, type="media", text="")
    attachment = Attachment(organization=conversation.organization, message=message, filename="invoice.pdf",
                            content_type="application/pdf", status=Attachment.Status.STORED)
    attachment.file.save("invoice.pdf", ContentFile(b"%PDF-1.4 secret"), save=True)
    return attachment


def test_lists_and_dashboard_never_show_another_organizations_rows(other_client, conversation):
    for url in (reverse("inbox:home"), reverse("inbox:list-fragment") + "?status=all",
                reverse("inbox:list-fragment") + "?q=Ada", reverse("inbox:dashboard")):
        response = other_client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert "Ada Lovelace" not in html and "Where is my order?" not in html, url
    assert "Support WhatsApp" not in other_client.get(reverse("inbox:dashboard")).content.decode()


def test_pages_and_fragments_of_another_organization_are_404(other_client, conversation, failed_message, stored_attachment):
    c, m = conversation.pk, failed_message.pk
    urls = [
        reverse("inbox:conversation", args=[c]),
        reverse("inbox:pane-fragment", args=[c]),
        reverse("inbox:row-fragment", args=[c]),
        reverse("inbox:header-fragment", args=[c]),
        reverse("inbox:thread-fragment", args=[c]),
        reverse("inbox:message-fragment", args=[m]),
        reverse("inbox:contact-fragment", args=[conversation.contact_id]),
        reverse("inbox:merge-candidates", args=[conversation.contact_id]) + "?q=a",
        reverse("inbox:attachment", args=[stored_attachment.pk]),
    ]
    for url in urls:
        assert other_client.get(url).status_code == 404, url


def test_actions_on_another_organizations_objects_are_404_and_change_nothing(
    other_client, other_org, conversation, failed_message
):
    c = conversation.pk
    foreign_contact = ContactFactory(organization=other_org, name="Globex person")
    posts = [
        (reverse("inbox:message-send", args=[c]), {"text": "hijack"}),
        (reverse("inbox:conversation-update", args=[c]), {"status": "resolved"}),
        (reverse("inbox:conversation-read", args=[c]), {}),
        (reverse("inbox:conversation-unread", args=[c]), {}),
        (reverse("inbox:presence", args=[c]), {}),
        (reverse("inbox:message-retry", args=[failed_message.pk]), {}),
        (reverse("inbox:contact-edit", args=[conversation.contact_id]), {"name": "Hacked"}),
        (reverse("inbox:contact-merge", args=[foreign_contact.pk]), {"other": conversation.contact_id}),
        (reverse("inbox:contact-merge", args=[conversation.contact_id]), {"other": foreign_contact.pk}),
    ]
    for url, data in posts:
        assert other_client.post(url, data).status_code == 404, url
    # Bulk actions ignore ids of other organizations.
    response = other_client.post(reverse("inbox:conversation-bulk"), {"ids": [c], "action": "resolve"})
    assert response.status_code == 200 and response.json() == {"updated": 0}
    conversation.refresh_from_db()
    failed_message.refresh_from_db()
    assert conversation.status == Conversation.Status.OPEN and conversation.unread_count == 1
    assert failed_message.status == Message.Status.FAILED
    assert not Message.objects.filter(text="hijack").exists()
    conversation.contact.refresh_from_db()
    assert conversation.contact.name == "Ada Lovelace"


def test_attachment_is_served_to_members_only_and_never_inline_when_it_could_run(agent_client, stored_attachment):
    from django.test import Client

    url = reverse("inbox:attachment", args=[stored_attachment.pk])
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and reverse("login") in anonymous["Location"]
    response = agent_client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"%PDF-1.4 secret"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in response["Content-Security-Policy"]


def test_image_attachment_is_inline(agent_client, conversation):
    message = MessageFactory(conversation=conversation, type="media", text="")
    attachment = Attachment(organization=conversation.organization, message=message, filename="photo.png",
                            content_type="image/png", status=Attachment.Status.STORED)
    attachment.file.save("photo.png", ContentFile(b"\x89PNG..."), save=True)
    response = agent_client.get(reverse("inbox:attachment", args=[attachment.pk]))
    assert response["Content-Disposition"].startswith("inline;")
    download = agent_client.get(reverse("inbox:attachment", args=[attachment.pk]) + "?download=1")
    assert download["Content-Disposition"].startswith("attachment;")


def test_a_pending_attachment_is_not_served(agent_client, conversation):
    message = MessageFactory(conversation=conversation, type="media", text="")
    attachment = Attachment.objects.create(organization=conversation.organization, message=message,
                                           content_type="image/png", platform_media_id="123")
    assert agent_client.get(reverse("inbox:attachment", args=[attachment.pk])).status_code == 404


def test_a_user_without_organization_gets_a_clear_403(client, db):
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="lonely@example.com"))
    response = client.get(reverse("inbox:home"))
    assert response.status_code == 403
    assert "not in an organization" in response.content.decode()
