"""The web chat visitor's websocket, /ws/widget/<channel_token>/, and agent presence for the widget.

Visitors connect from customers' sites, so ALLOWED_HOSTS says nothing about them: the Origin header
is checked here against the channel's allowed_origins (and our own site, for the demo page) before the
handshake is accepted; a refused handshake is answered 403 by daphne. The visitor token is sent as the
first frame ({"type": "hello", "visitor_token": "..."}) rather than in the URL, so it never appears in
access logs.

Server -> widget only, like the agent's InboxConsumer: visitors send messages, typing and receipts
over HTTP (inbox.webchat), so every write has one code path. Frames pushed to the widget:
    {"type": "ready", "v": 1, "data": {"agents_online": bool}}
    {"type": "message.created", "v": 1, "data": {...}}          an agent's reply (providers.webchat)
    {"type": "conversation.typing", "v": 1, "data": {"typing": bool, "by": "agent", "name": "..."}}
"""

import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.core import signing
from django.core.cache import cache

from providers.selectors import channel_get_by_token
from providers.webchat import origin_allowed, visitor_group

# An agent counts as online for this long after their inbox socket was last seen (connect or ping).
AGENT_PRESENCE_TTL = 90
VISITOR_TOKEN_MAX_AGE = 400 * 24 * 3600


# --- agent presence: written when an agent's inbox socket connects or pings, read by the widget --------
def _presence_key(organization_id: int) -> str:
    return f"webchat:agents-seen:{organization_id}"


def agents_seen(organization_id: int) -> None:
    cache.set(_presence_key(organization_id), time.time(), AGENT_PRESENCE_TTL)


async def aagents_seen(organization_id: int) -> None:
    await cache.aset(_presence_key(organization_id), time.time(), AGENT_PRESENCE_TTL)


def agents_online(organization_id: int) -> bool:
    seen = cache.get(_presence_key(organization_id))
    return seen is not None and time.time() - seen <= AGENT_PRESENCE_TTL


async def aagents_online(organization_id: int) -> bool:
    seen = await cache.aget(_presence_key(organization_id))
    return seen is not None and time.time() - seen <= AGENT_PRESENCE_TTL


# --- visitor tokens ---------------------------------------------------------------------------------
def _token_salt(channel_id: int) -> str:
    return f"alexia.webchat.visitor:{channel_id}"


def visitor_token_issue(*, channel_id: int, visitor: str, verified: bool) -> str:
    """A signed token naming the visitor, valid only for this channel (the salt holds its id)."""
    return signing.dumps(
        {"v": visitor, "u": 1 if verified else 0}, salt=_token_salt(channel_id), compress=True
    )


def visitor_token_read(*, channel_id: int, token: str) -> tuple[str, bool] | None:
    """(visitor, verified) from a token issued for this channel, else None (forged, other channel, expired)."""
    if not token or len(token) > 1000:
        return None
    try:
        data = signing.loads(token, salt=_token_salt(channel_id), max_age=VISITOR_TOKEN_MAX_AGE)
    except signing.BadSignature:
        return None
    visitor = data.get("v") if isinstance(data, dict) else None
    if not isinstance(visitor, str) or not visitor:
        return None
    return visitor, bool(data.get("u"))


def own_origins(host: str = "") -> tuple[str, ...]:
    """Our own site's origins: PUBLIC_BASE_URL, and the Host the request came to (http and https)."""
    origins = [settings.PUBLIC_BASE_URL]
    if host:
        origins += [f"http://{host}", f"https://{host}"]
    return tuple(origins)


@database_sync_to_async
def _channel(token: str):
    return channel_get_by_token(kind="webchat", token=token)


class WidgetConsumer(AsyncJsonWebsocketConsumer):
    """One visitor's widget. Joins the visitor's group after the hello frame; never writes."""

    async def connect(self):
        self.group = None
        token = self.scope["url_route"]["kwargs"].get("token", "")
        channel = await _channel(token)
        headers = dict(self.scope.get("headers") or [])
        origin = headers.get(b"origin", b"").decode("latin-1")
        host = headers.get(b"host", b"").decode("latin-1")
        if channel is None or not channel.is_active:
            await self.close(code=4404)
            return
        if not origin_allowed(origin, channel.config.get("allowed_origins") or [], own_origins(host)):
            # Closing before accept makes daphne answer the handshake with 403.
            await self.close()
            return
        self.channel_id = channel.pk
        self.organization_id = channel.organization_id
        await self.accept()

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "hello" and self.group is None:
            found = visitor_token_read(
                channel_id=self.channel_id, token=str(content.get("visitor_token") or "")
            )
            if found is None:
                await self.send_json({"type": "error", "v": 1, "data": {"code": "bad_visitor_token"}})
                await self.close(code=4403)
                return
            self.group = visitor_group(self.channel_id, found[0])
            await self.channel_layer.group_add(self.group, self.channel_name)
            online = await aagents_online(self.organization_id)
            await self.send_json({"type": "ready", "v": 1, "data": {"agents_online": online}})
        elif kind == "ping":
            await self.send_json(
                {
                    "type": "pong",
                    "v": 1,
                    "data": {"agents_online": await aagents_online(self.organization_id)},
                }
            )

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def live_event(self, message):
        await self.send_json(message["event"])
