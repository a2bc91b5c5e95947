"""The widget's HTTP endpoints: origins, visitor tokens, identity verification, the shared intake
(deduplicated), receipts, typing, tenant isolation. Processing runs the real webhook_event_process."""

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import Client

from channels_app.publish import organization_group
from channels_app.widget_consumer import agents_seen, visitor_token_read
from inbox.models import ContactIdentity, Conversation, Message
from inbox.services.messages import message_create_outbound, message_send
from inbox.services.webhooks import webhook_event_process
from organizations.models import Role
from providers.models import Channel, WebhookEvent
from providers.webchat import visitor_group
from tests.factories import ChannelFactory, MembershipFactory, UserFactory

from .conftest import ORIGIN, Widget, signed

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.providers.webchat.urls")]


def process_all() -> None:
    for event in WebhookEvent.objects.filter(status=WebhookEvent.Status.RECEIVED).order_by("pk"):
        assert webhook_event_process(event_id=event.pk) == "processed", event.error


def say(widget: Widget, text: str, client_id: str):
    return widget.post("messages", {"client_id": client_id, "text": text})


def agent_reply(conversation: Conversation, text: str, *, private: bool = False) -> Message:
    message, _ = message_create_outbound(conversation=conversation, text=text, private=private)
    if not private:
        assert message_send(message_id=message.pk).status == "sent"
    message.refresh_from_db()
    return message


def listen(groups: list[str]):
    """Subscribe a fresh channel-layer channel to groups; returns a function that drains its events
    (call it once: the layer's receive buffer is bound to the event loop that first reads it)."""
    layer = get_channel_layer()
    name = async_to_sync(layer.new_channel)()
    for group in groups:
        async_to_sync(layer.group_add)(group, name)

    async def _drain(timeout):
        events = []
        while True:
            try:
                events.append(await asyncio.wait_for(layer.receive(name), timeout))
            except TimeoutError:
                return events

    return lambda timeout=0.5: async_to_sync(_drain)(timeout)


# --- origins and CORS -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name, method", [("config", "get"), ("session", "post"), ("messages", "get")])
@pytest.mark.parametrize("origin", ["https://evil.example", "https://shop.example.com.evil.example", ""])
def test_foreign_or_missing_origin_is_refused(channel, name, method, origin):
    widget = Widget(channel, origin=origin)
    response = getattr(widget, method)(name)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "origin_refused"
    assert "Access-Control-Allow-Origin" not in response
    assert not WebhookEvent.objects.exists()


def test_allowed_origin_gets_cors_headers_naming_it(widget):
    response = widget.get("config")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in response["Vary"]
    preflight = widget.client.options(
        widget.url("messages"),
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type, x-visitor-token",
    )
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == ORIGIN
    assert "X-Visitor-Token" in preflight["Access-Control-Allow-Headers"]


def test_an_origin_allowed_on_another_channel_is_refused_here(channel, other_channel):
    response = Widget(other_channel, origin=ORIGIN).get("config")
    assert response.status_code == 403


def test_our_own_site_may_embed_the_widget_demo_page(channel):
    widget = Widget(channel, origin="")
    # Browsers send no Origin on a same-origin GET; the Referer names the page instead.
    response = widget.get("config", HTTP_REFERER=f"http://testserver/webchat/demo/{channel.webhook_token}/")
    assert response.status_code == 200
    demo = Client().get(f"/webchat/demo/{channel.webhook_token}/")
    assert demo.status_code == 200
    html = demo.content.decode()
    assert (
        f'<script src="http://testserver/static/widget.js" data-channel="{channel.webhook_token}" async></script>'
        in html
    )
    assert "&lt;script" in html  # the snippet is also shown, escaped


def test_unknown_token_is_404(channel):
    response = Client().get("/webchat/nope/config/", HTTP_ORIGIN=ORIGIN)
    assert response.status_code == 404
    assert Client().get("/webchat/demo/nope/").status_code == 404


def test_config(widget, channel):
    body = widget.get("config").json()
    assert body["enabled"] is True
    assert body["name"] == "Shop chat"
    assert body["agents_online"] is False
    assert body["identity_verification"] is True
    agents_seen(channel.organization_id)
    assert widget.get("config").json()["agents_online"] is True


def test_paused_channel_hides_the_widget_and_takes_no_messages(widget, channel):
    widget.start()
    Channel.objects.filter(pk=channel.pk).update(status=Channel.Status.PAUSED)
    assert widget.get("config").json() == {"enabled": False}
    response = say(widget, "hello?", "c" * 16)
    assert response.status_code == 409
    assert not WebhookEvent.objects.exists()


# --- sessions and identity ------------------------------------------------------------------------------
def test_anonymous_session_is_resumed_with_its_token(widget, channel):
    first = widget.start()
    visitor, verified = visitor_token_read(channel_id=channel.pk, token=first["visitor_token"])
    assert visitor.startswith("v_") and not verified
    again = widget.start(visitor_token=first["visitor_token"])
    assert visitor_token_read(channel_id=channel.pk, token=again["visitor_token"]) == (visitor, False)
    fresh = Widget(channel).start()
    assert visitor_token_read(channel_id=channel.pk, token=fresh["visitor_token"])[0] != visitor


def test_forged_token_starts_a_new_visitor_and_is_refused_for_data(widget, channel):
    widget.start()
    widget.token = widget.token[:-2] + ("AA" if not widget.token.endswith("AA") else "BB")
    assert widget.get("messages").status_code == 403
    assert say(widget, "hi", "a" * 12).status_code == 403
    data = widget.start(visitor_token=widget.token)
    assert visitor_token_read(channel_id=channel.pk, token=data["visitor_token"]) is not None


def test_verified_user_becomes_the_identity(widget, channel):
    data = widget.start(**signed("user-8812"), name="Ana Souza", email="Ana@Example.com")
    assert data["visitor"] == {"name": "Ana Souza", "email": "ana@example.com", "verified": True}
    assert say(widget, "Where is my order?", "u8812msg0001").status_code == 202
    process_all()
    identity = ContactIdentity.objects.get(kind="webchat", value="user-8812")
    assert identity.organization_id == channel.organization_id
    assert identity.contact.name == "Ana Souza"
    assert identity.contact.attributes["email"] == "ana@example.com"
    assert Message.objects.get(text="Where is my order?").conversation.contact_id == identity.contact_id
    # The same user on another device is the same visitor, with the same conversation.
    other_device = Widget(channel)
    other_device.start(**signed("user-8812"))
    assert [m["text"] for m in other_device.get("messages").json()["messages"]] == ["Where is my order?"]


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": "user-8812"},
        {"user_id": "user-8812", "user_hash": "0" * 64},
        {"user_id": "user-8812", "user_hash": signed("user-8813")["user_hash"]},
        {
            "user_id": "user-8812",
            "user_hash": signed("user-8812", secret="not-the-channel-secret")["user_hash"],
        },
    ],
)
def test_unsigned_or_badly_signed_user_id_is_refused(widget, body):
    response = widget.post("session", body)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "identity_refused"
    assert not ContactIdentity.objects.exists()


def test_pre_chat_form(widget, channel):
    channel.config = {**channel.config, "pre_chat_form": {"name": "required", "email": "required"}}
    channel.save()
    assert widget.start()["pre_chat_missing"] == ["name", "email"]
    data = widget.start(name="Ana", email="ana@example.com")
    assert data["pre_chat_missing"] == []
    assert widget.start()["visitor"]["name"] == "Ana"  # resumed: remembered
    bad = widget.post("session", {"email": "not-an-address"})
    assert bad.status_code == 400


# --- messages through the shared intake -----------------------------------------------------------------
def test_visitor_message_goes_through_the_intake_once(widget, channel):
    widget.start(name="Ana")
    assert say(widget, "Do you ship to Portugal?", "msg-0001-abcd").status_code == 202
    retry = say(widget, "Do you ship to Portugal?", "msg-0001-abcd")
    assert retry.status_code == 202
    assert retry.json()["duplicate"] is True
    assert WebhookEvent.objects.filter(channel=channel).count() == 1
    process_all()
    # Replaying the processed event changes nothing either.
    event = WebhookEvent.objects.get()
    WebhookEvent.objects.filter(pk=event.pk).update(status=WebhookEvent.Status.RECEIVED)
    process_all()
    message = Message.objects.get()
    assert message.direction == "in"
    assert message.channel_id == channel.pk
    assert message.conversation.contact.name == "Ana"
    history = widget.get("messages").json()["messages"]
    assert [(m["text"], m["client_id"]) for m in history] == [("Do you ship to Portugal?", "msg-0001-abcd")]


def test_two_visitors_may_reuse_a_client_id(channel):
    a, b = Widget(channel), Widget(channel)
    a.start()
    b.start()
    say(a, "from a", "same-client-id")
    say(b, "from b", "same-client-id")
    process_all()
    assert sorted(Message.objects.values_list("text", flat=True)) == ["from a", "from b"]


@pytest.mark.parametrize(
    "body, code",
    [
        ({"client_id": "msg-0001-abcd", "text": "   "}, "empty_message"),
        ({"client_id": "x", "text": "hi"}, "invalid_client_id"),
        ({"client_id": "msg-0001-abcd", "text": "x" * 5001}, "message_too_long"),
    ],
)
def test_invalid_messages(widget, body, code):
    widget.start()
    response = widget.post("messages", body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_a_flood_is_rate_limited(widget):
    widget.start()
    codes = [say(widget, f"spam {i}", f"flood-{i:08d}").status_code for i in range(14)]
    assert codes[:10] == [202] * 10
    assert 429 in codes[10:]


def test_history_shows_agent_replies_but_never_private_notes(widget, channel):
    widget.start()
    say(widget, "Hello", "hello-00000001")
    process_all()
    conversation = Conversation.objects.get()
    agent_reply(conversation, "Internal: VIP customer", private=True)
    reply = agent_reply(conversation, "Hi! How can I help?")
    assert reply.platform_message_id == f"webchat:{reply.pk}"
    body = widget.get("messages").json()
    assert [m["text"] for m in body["messages"]] == ["Hello", "Hi! How can I help?"]
    assert body["messages"][1]["status"] == "sent"
    after = widget.get("messages", f"?after={body['messages'][0]['id']}").json()["messages"]
    assert [m["text"] for m in after] == ["Hi! How can I help?"]


def test_agent_reply_reaches_the_visitors_socket_group(widget, channel):
    widget.start()
    visitor, _ = visitor_token_read(channel_id=channel.pk, token=widget.token)
    say(widget, "Hello", "hello-00000001")
    process_all()
    drain = listen([visitor_group(channel.pk, visitor)])
    reply = agent_reply(Conversation.objects.get(), "Hi there")
    [event] = drain()
    assert event["event"]["type"] == "message.created"
    assert event["event"]["data"]["id"] == reply.pk
    assert event["event"]["data"]["text"] == "Hi there"


# --- receipts -------------------------------------------------------------------------------------------
def test_read_receipt_moves_the_ticks(widget, channel):
    widget.start()
    say(widget, "Hello", "hello-00000001")
    process_all()
    reply = agent_reply(Conversation.objects.get(), "Hi there")
    response = widget.post("receipts", {"status": "delivered", "message_ids": [reply.pk]})
    assert response.json() == {"message_ids": [reply.pk]}
    process_all()
    reply.refresh_from_db()
    assert reply.status == "delivered"
    widget.post("receipts", {"status": "read", "message_ids": [reply.pk]})
    process_all()
    reply.refresh_from_db()
    assert reply.status == "read"
    assert reply.read_at is not None


def test_receipts_for_someone_elses_messages_are_dropped(widget, channel):
    widget.start()
    say(widget, "Hello", "hello-00000001")
    intruder = Widget(channel)
    intruder.start()
    say(intruder, "Me too", "metoo-0000001")
    process_all()
    victim_conversation = Conversation.objects.get(messages__text="Hello")
    reply = agent_reply(victim_conversation, "Your order 4417 shipped")
    response = intruder.post("receipts", {"status": "read", "message_ids": [reply.pk]})
    assert response.json() == {"message_ids": []}
    assert intruder.post("receipts", {"status": "seen", "message_ids": [reply.pk]}).status_code == 400
    process_all()
    reply.refresh_from_db()
    assert reply.status == "sent"


# --- tenant isolation -----------------------------------------------------------------------------------
def test_a_token_of_one_organization_reads_nothing_of_another(widget, channel, other_channel):
    widget.start()
    say(widget, "Acme secret", "acme-00000001")
    process_all()
    # Globex's visitor, on Globex's channel and site.
    globex = Widget(other_channel, origin="https://globex.example")
    globex.start()
    say(globex, "Globex secret", "globex-0000001")
    process_all()
    # Acme's token on Globex's channel (from an origin Globex allows): refused, not resolved.
    stolen = Widget(other_channel, origin="https://globex.example")
    stolen.token = widget.token
    response = stolen.get("messages")
    assert response.status_code == 403
    assert say(stolen, "injected", "inject-000001").status_code == 403
    # And a session started with it is a fresh Globex visitor, who sees nothing of either.
    stolen.start(visitor_token=widget.token)
    assert stolen.get("messages").json()["messages"] == []
    assert not Message.objects.filter(text="injected").exists()
    assert not Message.objects.filter(organization=other_channel.organization, text="Acme secret").exists()


def test_same_verified_user_id_in_two_organizations_is_two_people(widget, channel, other_channel):
    widget.start(**signed("42"))
    say(widget, "Acme question", "acme-00000042")
    other_channel.credentials = {"identity_secret": "globex-secret"}
    other_channel.save()
    globex = Widget(other_channel, origin="https://globex.example")
    globex.start(**signed("42", secret="globex-secret"))
    say(globex, "Globex question", "globex-0000042")
    process_all()
    assert [m["text"] for m in widget.get("messages").json()["messages"]] == ["Acme question"]
    assert [m["text"] for m in globex.get("messages").json()["messages"]] == ["Globex question"]


# --- typing ---------------------------------------------------------------------------------------------
def test_visitor_typing_is_published_to_the_organization(widget, channel, other_channel):
    widget.start()
    assert widget.post("typing", {"typing": True}).status_code == 204  # no conversation yet: nothing
    say(widget, "Hello", "hello-00000001")
    process_all()
    conversation = Conversation.objects.get()
    drain = listen(
        [organization_group(channel.organization_id), organization_group(other_channel.organization_id)]
    )
    widget.post("typing", {"typing": True})
    widget.post("typing", {"typing": False})
    events = [e["event"] for e in drain()]
    assert events == [
        {
            "type": "conversation.typing",
            "v": 1,
            "data": {
                "conversation": conversation.pk,
                "channel": channel.pk,
                "contact": conversation.contact_id,
                "typing": typing,
                "by": "contact",
            },
        }
        for typing in (True, False)
    ]


@pytest.fixture
def logged_in_agent(org):
    user = UserFactory(username="wc-agent@acme.test", first_name="Bruna")
    MembershipFactory(user=user, organization=org, role=Role.AGENT)
    client = Client()
    client.force_login(user)
    return client


def test_agent_typing_reaches_the_visitor(widget, channel, logged_in_agent):
    widget.start()
    visitor, _ = visitor_token_read(channel_id=channel.pk, token=widget.token)
    say(widget, "Hello", "hello-00000001")
    process_all()
    conversation = Conversation.objects.get()
    drain = listen([visitor_group(channel.pk, visitor)])
    response = logged_in_agent.post(
        f"/webchat/agent/conversations/{conversation.pk}/typing/", {"typing": "1"}
    )
    assert response.status_code == 200
    assert response.json() == {"delivered": True}
    [event] = drain()
    assert event["event"] == {
        "type": "conversation.typing",
        "v": 1,
        "data": {"typing": True, "by": "agent", "name": "Bruna"},
    }
    # The polling widget sees it too, and the agent counts as online.
    body = widget.get("messages").json()
    assert body["agent_typing"] is True
    assert body["agent_name"] == "Bruna"
    assert body["agents_online"] is True
    logged_in_agent.post(
        f"/webchat/agent/conversations/{conversation.pk}/typing/",
        data=json.dumps({"typing": False}),
        content_type="application/json",
    )
    assert widget.get("messages").json()["agent_typing"] is False


def test_agent_typing_is_scoped_to_the_agents_organization(channel, other_channel, logged_in_agent):
    globex = Widget(other_channel, origin="https://globex.example")
    globex.start()
    say(globex, "Hello", "hello-00000001")
    process_all()
    conversation = Conversation.objects.get()
    response = logged_in_agent.post(
        f"/webchat/agent/conversations/{conversation.pk}/typing/", {"typing": "1"}
    )
    assert response.status_code == 404
    anonymous = Client().post(f"/webchat/agent/conversations/{conversation.pk}/typing/", {"typing": "1"})
    assert anonymous.status_code == 302


def test_agent_typing_on_another_kind_is_a_no_op(org, logged_in_agent):
    wa = ChannelFactory(organization=org, kind="whatsapp_cloud")
    from tests.factories import ConversationFactory

    conversation = ConversationFactory(organization=org, channel=wa)
    response = logged_in_agent.post(
        f"/webchat/agent/conversations/{conversation.pk}/typing/", {"typing": "1"}
    )
    assert response.json() == {"delivered": False}
