"""The visitor's websocket: per-channel Origin check, visitor token in the first frame, agent replies
and typing pushed to the visitor's group only."""

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.urls import path

from channels_app.publish import publish
from channels_app.widget_consumer import WidgetConsumer, agents_seen, visitor_token_issue
from providers.base import OutboundMessage
from providers.models import Channel
from providers.registry import get_provider
from providers.webchat import visitor_group

from ..factories import ChannelFactory, OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = "https://shop.example.com"
APP = URLRouter([path("ws/widget/<str:token>/", WidgetConsumer.as_asgi())])


async def _connect(token: str, origin: str | None = ORIGIN, host: str = "chat.alexia.test"):
    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    communicator = WebsocketCommunicator(APP, f"/ws/widget/{token}/", headers=headers)
    connected, code = await communicator.connect()
    return communicator, connected, code


async def _ready(channel, visitor: str, origin: str = ORIGIN):
    ws, connected, _ = await _connect(channel.webhook_token, origin)
    assert connected
    token = visitor_token_issue(channel_id=channel.pk, visitor=visitor, verified=False)
    await ws.send_json_to({"type": "hello", "visitor_token": token})
    ready = await ws.receive_json_from(timeout=3)
    assert ready["type"] == "ready"
    return ws, ready


@pytest.fixture(autouse=True)
async def _close_thread_connections():
    # database_sync_to_async keeps its worker thread's connection (CONN_MAX_AGE): close it, or the
    # test database cannot be dropped at the end of the session.
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def channel(db):
    return ChannelFactory(organization=OrganizationFactory(), kind="webchat", name="Shop chat")


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://shop.example.com",
        "https://shop.example.com.evil.example",
        "null",
        None,
    ],
)
async def test_foreign_or_missing_origin_is_refused(channel, origin):
    ws, connected, _ = await _connect(channel.webhook_token, origin)
    assert not connected


async def test_unknown_or_paused_channel_is_refused(channel):
    _, connected, _ = await _connect("no-such-token")
    assert not connected
    await sync_to_async(Channel.objects.filter(pk=channel.pk).update)(status=Channel.Status.PAUSED)
    _, connected, _ = await _connect(channel.webhook_token)
    assert not connected


async def test_our_own_site_may_connect(channel, settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8123"
    ws, connected, _ = await _connect(channel.webhook_token, "http://127.0.0.1:8123", host="127.0.0.1:8123")
    assert connected
    await ws.disconnect()


async def test_bad_visitor_token_is_closed(channel):
    ws, connected, _ = await _connect(channel.webhook_token)
    assert connected
    await ws.send_json_to({"type": "hello", "visitor_token": "forged"})
    assert (await ws.receive_json_from())["data"]["code"] == "bad_visitor_token"
    assert (await ws.receive_output(timeout=2))["type"] == "websocket.close"


async def test_a_token_of_another_channel_is_refused(channel):
    other = await sync_to_async(ChannelFactory)(
        organization=await sync_to_async(OrganizationFactory)(), kind="webchat"
    )
    ws, connected, _ = await _connect(channel.webhook_token)
    assert connected
    foreign = visitor_token_issue(channel_id=other.pk, visitor="v_theirs", verified=False)
    await ws.send_json_to({"type": "hello", "visitor_token": foreign})
    assert (await ws.receive_json_from())["type"] == "error"
    assert (await ws.receive_output(timeout=2))["type"] == "websocket.close"


async def test_agent_reply_reaches_only_that_visitor(channel):
    ana, ready = await _ready(channel, "v_ana")
    assert ready["data"] == {"agents_online": False}
    bob, _ = await _ready(channel, "v_bob")
    provider = await sync_to_async(get_provider)(channel)
    result = await sync_to_async(provider.send)(OutboundMessage(message_id=77, to="v_ana", text="Hi Ana"))
    assert result.platform_message_id == "webchat:77"
    event = await ana.receive_json_from(timeout=3)
    assert event["type"] == "message.created"
    assert event["data"]["id"] == 77
    assert event["data"]["text"] == "Hi Ana"
    assert await bob.receive_nothing(timeout=0.5)
    await ana.disconnect()
    await bob.disconnect()


async def test_typing_and_presence(channel):
    ws, _ = await _ready(channel, "v_ana")
    typing = {"type": "conversation.typing", "v": 1, "data": {"typing": True, "by": "agent", "name": "Bruna"}}
    await sync_to_async(publish)(visitor_group(channel.pk, "v_ana"), typing)
    assert await ws.receive_json_from(timeout=3) == typing
    await sync_to_async(agents_seen)(channel.organization_id)
    await ws.send_json_to({"type": "ping"})
    assert await ws.receive_json_from(timeout=3) == {"type": "pong", "v": 1, "data": {"agents_online": True}}
    await ws.disconnect()


async def test_frames_before_hello_join_nothing(channel):
    ws, connected, _ = await _connect(channel.webhook_token)
    assert connected
    await ws.send_json_to({"type": "subscribe", "group": "org.1"})
    await sync_to_async(publish)(
        visitor_group(channel.pk, "v_ana"), {"type": "message.created", "v": 1, "data": {}}
    )
    assert await ws.receive_nothing(timeout=0.5)
    await ws.disconnect()
