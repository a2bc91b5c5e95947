"""Website chat widget (kind "webchat"): our own platform, so "sending" is a push to the visitor's socket.

There is no third party here. Visitor messages and read receipts are posted by the widget to our own
endpoints (inbox.webchat), which check the page's Origin against the channel's allowed_origins and the
visitor token, then store a WebhookEvent whose body *we* wrote (the shapes below) and hand it to the
same processing task as every other channel. The generic /webhooks/webchat/<token>/ URL therefore
accepts nothing: verify() always refuses, so nobody can forge a visitor's message by posting there.

Event bodies (JSON, written by inbox.webchat.services, read by parse()):
    {"v": 1, "type": "message", "visitor": "<identity value>", "client_id": "<widget's id>",
     "text": "...", "name": "...", "at": "<ISO 8601>", "page_url": "..."}
    {"v": 1, "type": "receipt", "visitor": "...", "status": "delivered" | "read",
     "message_ids": [12, 13], "at": "<ISO 8601>"}

Agent replies: send() publishes {"type": "message.created", "v": 1, "data": {...}} to the visitor's
group (visitor_group()). A visitor who is offline fetches the history when the widget reconnects, so
a push with no listener still counts as sent; "delivered" and "read" come back from the widget as
receipts. The widget ignores a message id it already shows, which makes a second push harmless: the
sweeper may resend an interrupted send (supports_lookup, lookup() answers "not found").
"""

import asyncio
import hashlib
import hmac
import json
import logging
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from channels_app.publish import publish

from .base import (
    CheckResult,
    DeliveryStatus,
    InboundMessage,
    OutboundMessage,
    Provider,
    SendResult,
    StatusUpdate,
)
from .errors import ConfigurationError, MalformedPayloadError, WebhookVerificationError

logger = logging.getLogger(__name__)

IDENTITY_KIND = "webchat"
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_TEXT = 5000
RECEIPT_STATUSES = {"delivered": DeliveryStatus.DELIVERED, "read": DeliveryStatus.READ}


# --- pure helpers shared by the provider, the widget endpoints and the widget consumer -----------------
def visitor_key(visitor: str) -> str:
    """A short, fixed-alphabet key for a visitor id (verified user ids may hold any character)."""
    return hashlib.sha256(visitor.encode()).hexdigest()[:32]


def visitor_group(channel_id: int, visitor: str) -> str:
    """The channel-layer group of one visitor's widget sockets (names allow only [a-zA-Z0-9._-])."""
    return f"widget.{channel_id}.{visitor_key(visitor)}"


def platform_id_for(visitor: str, client_id: str) -> str:
    """A visitor message's platform id: the widget's own id, scoped to the visitor so that one visitor
    can never collide with (and so swallow) another's message."""
    return f"wc:{visitor_key(visitor)}:{client_id}"


def client_id_of(platform_message_id: str | None) -> str:
    return (
        (platform_message_id or "").rsplit(":", 1)[-1]
        if (platform_message_id or "").startswith("wc:")
        else ""
    )


def outbound_platform_id(message_id: int) -> str:
    return f"webchat:{message_id}"


def user_hash(identity_secret: str, user_id: str) -> str:
    """What the customer's backend computes for identity verification: hex HMAC-SHA256 of the user id."""
    return hmac.new(identity_secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def user_hash_valid(identity_secret: str, user_id: str, given: str) -> bool:
    if not identity_secret or not user_id or not given:
        return False
    return hmac.compare_digest(user_hash(identity_secret, user_id), given.strip().lower())


def normalize_origin(value: str) -> str:
    """scheme://host[:port], lower-cased; "" for anything that is not an http(s) origin."""
    parts = urlsplit((value or "").strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    return f"{parts.scheme}://{parts.netloc.lower()}"


def origin_allowed(origin: str, allowed: list[str] | tuple[str, ...], own: tuple[str, ...] = ()) -> bool:
    """True when the page's origin is one the channel lists (exactly) or our own site (the demo page)."""
    origin = normalize_origin(origin)
    if not origin or origin == "null":
        return False
    return origin in {normalize_origin(o) for o in allowed} | {normalize_origin(o) for o in own}


async def _layer_round_trip(layer) -> dict:
    name = await layer.new_channel()
    await layer.send(name, {"type": "check"})
    return await asyncio.wait_for(layer.receive(name), timeout=5)


class WebchatProvider(Provider):
    kind = "webchat"
    supports_lookup = True
    # A push to the visitor's socket group: instant, nothing to overlap.
    send_concurrency = 1

    # --- inbound -------------------------------------------------------------------------------------
    def verify(self, request) -> None:
        raise WebhookVerificationError(
            "web chat events are accepted only from the widget endpoints (/webchat/<token>/...)"
        )

    def event_id(self, body: bytes, headers: dict) -> str | None:
        data = self._load(body)
        if data.get("type") == "message":
            return f"msg:{visitor_key(str(data.get('visitor', '')))}:{data.get('client_id', '')}"
        return None

    @staticmethod
    def _load(body: bytes) -> dict:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedPayloadError(f"not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise MalformedPayloadError("the body must be a JSON object")
        return data

    @staticmethod
    def _when(value) -> datetime:
        try:
            at = datetime.fromisoformat(str(value))
        except ValueError as exc:
            raise MalformedPayloadError(f"bad time {value!r}") from exc
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return at.astimezone(UTC)

    def parse(self, body: bytes, headers: dict) -> list[InboundMessage | StatusUpdate]:
        data = self._load(body)
        kind = data.get("type")
        visitor = str(data.get("visitor") or "")
        if not visitor:
            raise MalformedPayloadError("no visitor")
        if kind == "message":
            client_id = str(data.get("client_id") or "")
            if not CLIENT_ID_RE.match(client_id):
                raise MalformedPayloadError("client_id must be 8-64 characters of A-Z a-z 0-9 _ -")
            text = str(data.get("text") or "")[:MAX_TEXT]
            content = {"page_url": str(data["page_url"])[:1000]} if data.get("page_url") else {}
            return [
                InboundMessage(
                    platform_message_id=platform_id_for(visitor, client_id),
                    sender_kind=IDENTITY_KIND,
                    sender_value=visitor,
                    timestamp=self._when(data.get("at")),
                    text=text,
                    sender_name=str(data.get("name") or "")[:200],
                    content=content,
                )
            ]
        if kind == "receipt":
            status = RECEIPT_STATUSES.get(data.get("status"))
            if status is None:
                logger.info("webchat receipt with unknown status %r skipped", data.get("status"))
                return []
            at = self._when(data.get("at"))
            return [
                StatusUpdate(
                    platform_message_id=outbound_platform_id(int(mid)),
                    status=status,
                    timestamp=at,
                    our_reference=str(int(mid)),
                )
                for mid in data.get("message_ids") or []
                if isinstance(mid, int) or (isinstance(mid, str) and mid.isdigit())
            ]
        logger.info("webchat event type %r skipped", kind)
        return []

    # --- outbound ------------------------------------------------------------------------------------
    def send(self, outbound: OutboundMessage) -> SendResult:
        if not outbound.to:
            raise ConfigurationError("web chat message without a visitor")
        data = {
            "id": outbound.message_id,
            "direction": "out",
            "type": outbound.type,
            "text": outbound.text,
            "attachments": [
                {
                    "url": a.get("url", ""),
                    "content_type": a.get("content_type", ""),
                    "filename": a.get("filename", ""),
                }
                for a in outbound.attachments
            ],
            "created_at": datetime.now(UTC).isoformat(),
        }
        # Best effort by design: with no socket listening the visitor reads it from the history later.
        publish(
            visitor_group(self.channel.pk, outbound.to), {"type": "message.created", "v": 1, "data": data}
        )
        return SendResult(platform_message_id=outbound_platform_id(outbound.message_id))

    def lookup(self, outbound: OutboundMessage, since: datetime) -> SendResult | None:
        """Pushes are idempotent on the widget (it ignores a message id it already shows), so an
        interrupted send is always safe to push again: answer "not found"."""
        return None

    def check(self) -> CheckResult:
        origins = self.config.get("allowed_origins") or []
        if not origins:
            return CheckResult(False, "No allowed_origins: the widget would be refused on every site.")
        if not self.credentials.get("identity_secret"):
            return CheckResult(False, "No identity_secret: identity verification cannot work.")
        layer = get_channel_layer()
        if layer is None:
            return CheckResult(
                False, "No channel layer configured: agent replies cannot reach visitors live."
            )
        if not isinstance(layer, InMemoryChannelLayer):
            # A round trip through the real layer (Redis): what agent replies travel over.
            try:
                received = async_to_sync(_layer_round_trip)(layer)
            except Exception as exc:  # noqa: BLE001 - any failure of the layer is the answer
                return CheckResult(False, f"Channel layer unreachable: {type(exc).__name__}: {exc}")
            if received.get("type") != "check":
                return CheckResult(False, "Channel layer answered something else.")
        return CheckResult(True, f"Widget ready for {', '.join(origins)}.")

    def lookup_key(self) -> str:
        origins = self.config.get("allowed_origins") or []
        return normalize_origin(origins[0]) if origins else ""

    # --- widget settings ------------------------------------------------------------------------------
    def widget_settings(self) -> dict:
        """What the widget shows, from the channel's config, normalized (the admin stores loose shapes).

        pre_chat_form: true (name optional, e-mail required), false/absent (none), or
        {"name": "required"|"optional"|"hidden", "email": "required"|"optional"|"hidden"}.
        """
        raw = self.config.get("pre_chat_form")
        if raw is True:
            form = {"name": "optional", "email": "required"}
        elif isinstance(raw, dict):
            form = {
                key: raw.get(key) if raw.get(key) in ("required", "optional", "hidden") else "optional"
                for key in ("name", "email")
            }
        else:
            form = {"name": "hidden", "email": "hidden"}
        enabled = any(v != "hidden" for v in form.values())
        return {
            "name": self.channel.name,
            "greeting": str(self.config.get("greeting") or "Hi! How can we help?"),
            "offline_message": str(
                self.config.get("offline_message")
                or "We are away right now. Leave a message and your e-mail: we will answer there."
            ),
            "pre_chat_form": {"enabled": enabled, **form},
        }
