from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from organizations.middleware import SESSION_KEY
from organizations.selectors import membership_get, organization_list_for_user

from .publish import organization_group, user_group
from .widget_consumer import aagents_seen


@database_sync_to_async
def _membership_for(user, session):
    organization_id = session.get(SESSION_KEY) if session is not None else None
    membership = membership_get(user=user, organization_id=organization_id)
    if membership is None:
        first = organization_list_for_user(user=user).first()
        membership = membership_get(user=user, organization_id=first.pk) if first else None
    return membership


class InboxConsumer(AsyncJsonWebsocketConsumer):
    """Pushes live events of the agent's current organization. Read-only: agents act over HTTP."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        membership = await _membership_for(user, self.scope.get("session"))
        if membership is None:
            await self.close(code=4403)
            return
        self.groups_joined = [organization_group(membership.organization_id), user_group(user.pk)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        self.organization_id = membership.organization_id
        # Agent presence, so the web chat widget can say whether someone is there to answer.
        await aagents_seen(membership.organization_id)
        await self.send_json({"type": "hello", "v": 1, "data": {"organization": membership.organization_id}})

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await aagents_seen(self.organization_id)
            await self.send_json({"type": "pong", "v": 1})

    async def live_event(self, message):
        await self.send_json(message["event"])
