"""The provider interface and the normalized values every provider speaks.

parse() is pure (no ORM, no HTTP, no clock); verify() checks signatures over the raw body; send()
talks to the platform with a timeout and raises the typed errors of providers.errors.
"""

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from django.conf import settings


class DeliveryStatus(enum.StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class InboundAttachment:
    kind: str  # image, audio, video, document, sticker, voice
    content_type: str = ""
    filename: str = ""
    platform_media_id: str = ""
    url: str = ""
    size: int | None = None


@dataclass(frozen=True)
class InboundMessage:
    """A customer's message, normalized."""

    platform_message_id: str
    sender_kind: str  # ContactIdentity.Kind value: phone, telegram, messenger, email, ...
    sender_value: str  # normalized: E.164 for phones, lower-cased e-mail, string ids
    timestamp: datetime  # aware UTC
    type: str = "text"  # Message.Type value
    text: str = ""
    sender_name: str = ""
    content: dict[str, Any] = field(default_factory=dict)
    attachments: tuple[InboundAttachment, ...] = ()
    reply_to_platform_id: str = ""
    thread_key: str = ""
    # An edit of an earlier message (Telegram edited_message): updates instead of creating.
    is_edit: bool = False
    # Our own send seen again (Meta echoes): matched to the outbound message, never a new one.
    is_echo: bool = False


@dataclass(frozen=True)
class StatusUpdate:
    platform_message_id: str
    status: DeliveryStatus
    timestamp: datetime
    error_code: str = ""
    error_reason: str = ""
    # Our own message id echoed back by the platform (WhatsApp biz_opaque_callback_data "alexia:<id>",
    # given here with or without the prefix), which lets a status find a message whose send response
    # was lost (worker killed, timeout).
    our_reference: str = ""


@dataclass(frozen=True)
class ContactEvent:
    """Something about the contact rather than a message: blocked the bot, opted out, bounced."""

    sender_kind: str
    sender_value: str
    event: str  # blocked, unblocked, opted_out, opted_in, undeliverable
    timestamp: datetime
    reason: str = ""


ParsedEvent = InboundMessage | StatusUpdate | ContactEvent


@dataclass(frozen=True)
class OutboundMessage:
    """What send() needs, with no model instance: ids and values only."""

    message_id: int
    to: str  # the identity value (E.164, chat id, PSID, e-mail)
    text: str = ""
    type: str = "text"
    template: dict[str, Any] | None = None  # {"name", "language", "variables"}
    attachments: tuple[dict[str, Any], ...] = ()  # {"url", "content_type", "filename", "path"}
    reply_to_platform_id: str = ""
    content: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str = ""
    status_callback_url: str = ""


@dataclass(frozen=True)
class SendResult:
    platform_message_id: str
    status: DeliveryStatus = DeliveryStatus.SENT
    segments: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str


class Provider:
    """One subclass per platform, constructed around a Channel (credentials read once, never logged)."""

    kind: str = ""
    default_api_base_setting: str = ""
    # Requests per second a channel of this kind may send (None: no limit), per platform docs.
    rate_limit_per_second: float | None = None
    # Per-recipient limit (Telegram: ~1 msg/s per chat), None when the platform sets none.
    per_recipient_rate_per_second: float | None = None

    @property
    def send_concurrency(self) -> int:
        """How many sends of one channel may be in flight at once (the batch sender's threads). HTTP
        platforms answer in 100-300 ms, so sends overlap; a provider that is not thread-safe says 1."""
        return settings.SEND_CONCURRENCY

    def __init__(self, channel) -> None:
        self.channel = channel
        self.config: dict = dict(channel.config or {})
        self.credentials: dict = channel.credentials

    @property
    def api_base(self) -> str:
        base = self.config.get("api_base_url") or getattr(settings, self.default_api_base_setting, "")
        return base.rstrip("/")

    @property
    def timeout(self) -> float:
        return settings.PROVIDER_HTTP_TIMEOUT

    def http(self) -> requests.Session:
        session = requests.Session()
        session.headers["User-Agent"] = "Alexia/1.0"
        return session

    # --- inbound -------------------------------------------------------------------------------------
    def handshake(self, request) -> Any:
        """Answer a GET verification challenge (an HttpResponse), or None when the platform has none."""
        return None

    def verify(self, request) -> None:
        """Raise WebhookVerificationError unless the request is signed by the platform."""
        raise NotImplementedError

    def event_id(self, body: bytes, headers: dict) -> str | None:
        """The platform's id for this delivery, for deduplication; None: a hash of the body is used."""
        return None

    def parse(self, body: bytes, headers: dict) -> list[ParsedEvent]:
        raise NotImplementedError

    def immediate_response(self, body: bytes, headers: dict) -> Any:
        """A synchronous answer some platforms require (Discord PING); None: a plain 200."""
        return None

    # --- outbound ------------------------------------------------------------------------------------
    def send(self, outbound: OutboundMessage) -> SendResult:
        raise NotImplementedError

    supports_lookup: bool = False

    def lookup(self, outbound: OutboundMessage, since: datetime) -> SendResult | None:
        """Ask the platform whether `outbound` was accepted after `since` (Twilio lists messages).

        Used by the sweeper for a message whose send was interrupted: found -> mark sent, never send
        again; None -> the platform never got it, so sending again is safe. Only where supports_lookup.
        """
        raise NotImplementedError

    def download_media(self, attachment: InboundAttachment) -> tuple[bytes, str]:
        """Fetch an inbound attachment from the platform: (bytes, content type)."""
        raise NotImplementedError

    def rate_limit(self) -> float | None:
        """Messages per second for this channel: config `rate_limit_per_second` or the kind's default."""
        value = self.config.get("rate_limit_per_second")
        return float(value) if value else self.rate_limit_per_second

    def check(self) -> CheckResult:
        """A real, harmless call to the platform proving the credentials work ("test connection")."""
        raise NotImplementedError

    # --- lifecycle -----------------------------------------------------------------------------------
    def lookup_key(self) -> str:
        """The plain, indexed key that identifies this channel on the platform."""
        return ""

    def on_activate(self) -> None:
        """Called after a channel is activated (Telegram: setWebhook)."""

    def on_pause(self) -> None:
        """Called after a channel is paused (Telegram: deleteWebhook)."""
