"""The credential-free demo: sandbox channels, fake platforms, and playing the customer over HTTP."""

import socket

import pytest
from django.core.management import call_command

from inbox.models import Message
from inbox.services.messages import message_create_outbound, message_send
from inbox.services.sandbox import sandbox_customer_message, sandbox_platform_received, sandbox_status
from inbox.services.webhooks import webhook_event_process
from organizations.models import Organization
from providers.models import Channel, WebhookEvent
from providers.sandbox import start_fakes


def _start_fakes_on_free_ports(settings):
    """The fakes listen on FAKES_PORT_BASE + 0..2: pick a base whose three ports are free."""
    for _ in range(20):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base > 65000:
            continue
        settings.FAKES_PORT_BASE = base
        try:
            return start_fakes()
        except OSError:
            continue
    raise RuntimeError("no three free ports in a row for the fake platforms")


@pytest.fixture
def sandbox(live_server, settings, transactional_db):
    settings.PUBLIC_BASE_URL = live_server.url
    fakes = _start_fakes_on_free_ports(settings)
    org = Organization.objects.create(name="Demo Company", slug="demo-company")
    call_command("demo_sandbox")
    yield org
    for fake in fakes:
        fake.stop()


def _process_all():
    for event in WebhookEvent.objects.filter(status="received").order_by("id"):
        webhook_event_process(event_id=event.pk)


@pytest.mark.parametrize("kind", ["whatsapp_cloud", "twilio_sms", "twilio_whatsapp", "telegram"])
def test_play_the_customer_and_see_the_reply_reach_the_fake_platform(sandbox, kind):
    channel = Channel.objects.get(organization=sandbox, kind=kind)
    assert channel.config["sandbox"] is True
    sender = "5551239876" if kind == "telegram" else "+15551239876"
    sandbox_customer_message(channel=channel, sender=sender, name="Sam", text="Where is my parcel?")
    _process_all()
    inbound = Message.objects.get(channel=channel, direction="in")
    assert inbound.text == "Where is my parcel?"

    reply, _ = message_create_outbound(conversation=inbound.conversation, text="On its way!")
    assert message_send(message_id=reply.pk).status == "sent"
    received = sandbox_platform_received(channel=channel)
    assert [r["text"] for r in received] == ["On its way!"]

    if kind != "telegram":
        sandbox_status(message=Message.objects.get(pk=reply.pk), status="read")
        _process_all()
        assert Message.objects.get(pk=reply.pk).status == "read"


def test_demo_sandbox_is_idempotent(sandbox):
    call_command("demo_sandbox")
    assert Channel.objects.filter(organization=sandbox).count() == 4


def test_sandbox_pages_are_scoped_to_the_organization(client, org, other_owner):
    from ..factories import ChannelFactory, MessageFactory

    channel = ChannelFactory(organization=org, kind="whatsapp_cloud")
    channel.config = {**channel.config, "sandbox": True}
    channel.save()
    message = MessageFactory(
        conversation__organization=org,
        conversation__channel=channel,
        direction="out",
        status="sent",
        platform_message_id="wamid.x",
    )
    client.force_login(other_owner)
    assert client.get("/sandbox/").status_code == 200
    assert channel.name not in client.get("/sandbox/").content.decode()
    assert (
        client.post("/sandbox/send/", {"channel": channel.pk, "sender": "+1555", "text": "hi"}).status_code
        == 404
    )
    assert client.post(f"/sandbox/messages/{message.pk}/ack/", {"status": "read"}).status_code == 404
    assert WebhookEvent.objects.count() == 0


def test_sandbox_requires_login(client, db):
    response = client.get("/sandbox/")
    assert response.status_code == 302 and "/login/" in response["Location"]
