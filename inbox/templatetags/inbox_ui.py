"""Template helpers of the agent inbox: channel icons, delivery ticks, the reply window, short times."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from inbox.services.messages import SERVICE_WINDOW
from providers import sms

register = template.Library()

# Simple glyphs drawn for this product (24x24, currentColor), recognisable at 16px.
_ICONS = {
    "whatsapp_cloud": (
        "#25a55f",
        '<path d="M12 3a9 9 0 0 0-7.8 13.5L3 21l4.6-1.2A9 9 0 1 0 12 3z" fill="none" stroke="currentColor" '
        'stroke-width="1.8" stroke-linejoin="round"/><path d="M9 8.5c0 3.5 3 6.5 6.5 6.5l1-1.6-2-1-1 .9a4.6 '
        '4.6 0 0 1-2.3-2.3l.9-1-1-2z" fill="currentColor"/>',
    ),
    "twilio_whatsapp": None,
    "telegram": (
        "#2a9ed8",
        '<path d="M3.5 11.3 19.6 5c.8-.3 1.5.2 1.3 1.3l-2.7 12.7c-.2.9-.8 1.1-1.5.7l-4.2-3.1-2 2c-.2.2-.4.4-.9.4l.3'
        '-4.3 7.8-7c.3-.3-.1-.5-.5-.2l-9.6 6-4.1-1.3c-.9-.3-.9-.9.1-1.3z" fill="currentColor"/>',
    ),
    "twilio_sms": (
        "#d0344c",
        '<path d="M4 5h16a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H9l-4 3v-3H4a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1z" fill="none" '
        'stroke="currentColor" stroke-width="1.8" stroke-linejoin="round"/><circle cx="8" cy="11" r="1.2" '
        'fill="currentColor"/><circle cx="12" cy="11" r="1.2" fill="currentColor"/><circle cx="16" cy="11" '
        'r="1.2" fill="currentColor"/>',
    ),
    "messenger": (
        "#7a4ff0",
        '<path d="M12 3C7 3 3 6.7 3 11.3c0 2.6 1.3 4.9 3.3 6.4V21l3-1.7c.9.3 1.8.4 2.7.4 5 0 9-3.7 9-8.4S17 3 12 3z" '
        'fill="none" stroke="currentColor" stroke-width="1.8" stroke-linejoin="round"/><path d="m7 13.5 3.2-3.4 '
        '2.2 2.1 3.6-2.1-3.2 3.4-2.2-2.1z" fill="currentColor"/>',
    ),
    "instagram": (
        "#d6336c",
        '<rect x="4" y="4" width="16" height="16" rx="4.5" fill="none" stroke="currentColor" stroke-width="1.8"/>'
        '<circle cx="12" cy="12" r="3.6" fill="none" stroke="currentColor" stroke-width="1.8"/><circle cx="16.9" '
        'cy="7.1" r="1.1" fill="currentColor"/>',
    ),
    "email": (
        "#c27c0e",
        '<rect x="3" y="5.5" width="18" height="13" rx="1.5" fill="none" stroke="currentColor" stroke-width="1.8"/>'
        '<path d="m3.8 6.5 8.2 6.3 8.2-6.3" fill="none" stroke="currentColor" stroke-width="1.8" '
        'stroke-linejoin="round"/>',
    ),
    "webchat": (
        "#2458d6",
        '<circle cx="12" cy="12" r="8.5" fill="none" stroke="currentColor" stroke-width="1.8"/><path d="M3.5 12h17M12 '
        '3.5c2.3 2.4 3.4 5.2 3.4 8.5s-1.1 6.1-3.4 8.5c-2.3-2.4-3.4-5.2-3.4-8.5S9.7 5.9 12 3.5z" fill="none" '
        'stroke="currentColor" stroke-width="1.5"/>',
    ),
}
_ICONS["twilio_whatsapp"] = _ICONS["whatsapp_cloud"]
_FALLBACK = ("#5b6472", '<circle cx="12" cy="12" r="8" fill="none" stroke="currentColor" stroke-width="1.8"/>')
KIND_LABELS = {
    "whatsapp_cloud": "WhatsApp",
    "twilio_whatsapp": "WhatsApp (Twilio)",
    "telegram": "Telegram",
    "twilio_sms": "SMS",
    "messenger": "Messenger",
    "instagram": "Instagram",
    "email": "E-mail",
    "webchat": "Web chat",
}


@register.simple_tag
def channel_icon(kind: str, size: int = 16) -> str:
    color, body = _ICONS.get(kind) or _FALLBACK
    label = KIND_LABELS.get(kind, kind)
    return format_html(
        '<svg class="channel-icon" width="{}" height="{}" viewBox="0 0 24 24" style="color:{}" role="img" '
        'aria-label="{}"><title>{}</title>{}</svg>',
        size, size, color, label, label, mark_safe(body),  # noqa: S308 - our own constant markup
    )


@register.filter
def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


_TICK = '<path d="M4 12.5 8.5 17 19 6.5" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"/>'
_DOUBLE = (
    '<path d="M2 12.5 6.5 17 17 6.5" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" '
    'stroke-linejoin="round"/><path d="m11 16 1 1L22.5 6.5" fill="none" stroke="currentColor" stroke-width="2" '
    'stroke-linecap="round" stroke-linejoin="round"/>'
)
_CLOCK = (
    '<circle cx="12" cy="12" r="8" fill="none" stroke="currentColor" stroke-width="1.8"/><path d="M12 7.5V12l3 2" '
    'fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round"/>'
)
_BANG = (
    '<circle cx="12" cy="12" r="9" fill="currentColor"/><path d="M12 7v6" stroke="#fff" stroke-width="2.2" '
    'stroke-linecap="round"/><circle cx="12" cy="16.5" r="1.3" fill="#fff"/>'
)
_TICKS = {
    "pending": (_CLOCK, "Queued"),
    "sending": (_CLOCK, "Sending"),
    "sent": (_TICK, "Sent"),
    "delivered": (_DOUBLE, "Delivered"),
    "read": (_DOUBLE, "Read"),
    "failed": (_BANG, "Failed"),
}


@register.simple_tag
def ticks(status: str) -> str:
    if status not in _TICKS:
        return ""
    body, label = _TICKS[status]
    return format_html(
        '<span class="ticks ticks-{}" title="{}" data-status="{}"><svg width="16" height="16" viewBox="0 0 24 24" '
        'aria-hidden="true">{}</svg><span class="visually-hidden">{}</span></span>',
        status, label, status, mark_safe(body), label,  # noqa: S308 - our own constant markup
    )


@dataclass(frozen=True)
class ReplyWindow:
    applies: bool
    open: bool
    seconds_left: int
    closes_at: datetime | None

    @property
    def label(self) -> str:
        if not self.applies:
            return ""
        if not self.open:
            return "Window closed"
        return f"{short_duration(timedelta(seconds=self.seconds_left))} left"

    @property
    def urgent(self) -> bool:
        return self.applies and self.open and self.seconds_left < 3 * 3600


def reply_window_of(conversation, now: datetime | None = None) -> ReplyWindow:
    """The WhatsApp/Messenger 24-hour service window: whether it applies, and the time left."""
    window = SERVICE_WINDOW.get(conversation.channel.kind)
    if window is None:
        return ReplyWindow(False, True, 0, None)
    if conversation.last_inbound_at is None:
        return ReplyWindow(True, False, 0, None)
    closes_at = conversation.last_inbound_at + window
    left = int((closes_at - (now or timezone.now())).total_seconds())
    return ReplyWindow(True, left > 0, max(left, 0), closes_at)


@register.simple_tag
def reply_window(conversation) -> ReplyWindow:
    return reply_window_of(conversation)


def short_duration(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 24:
        rest = minutes % 60
        return f"{hours}h {rest}m" if rest and hours < 10 else f"{hours}h"
    days = hours // 24
    return f"{days}d"


@register.filter
def since(value: datetime | None) -> str:
    """Compact time since: 45s, 12m, 3h, 4d."""
    if not value:
        return ""
    return short_duration(timezone.now() - value)


@register.filter
def duration(value: timedelta | None) -> str:
    if value is None:
        return "–"
    seconds = int(value.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


@register.filter
def display_name(user) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


@register.filter
def initials(name: str) -> str:
    parts = [p for p in (name or "").replace("@", " ").split() if p[:1].isalnum()]
    return ("".join(p[0] for p in parts[:2]) or "?").upper()


@register.filter
def attachment_kind(content_type: str) -> str:
    main = (content_type or "").split("/")[0]
    return main if main in ("image", "audio", "video") else "file"


@register.filter
def filesize(size) -> str:
    if not size:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


@register.simple_tag
def sms_count(text: str) -> dict:
    return {"segments": sms.count_segments(text), "encoding": sms.encoding(text), "units": sms.length_in_units(text)}


@register.filter
def contact_label(contact) -> str:
    """The contact's name, else its first identity (identities prefetched by the list selectors)."""
    if contact is None:
        return ""
    if contact.name:
        return contact.name
    identities = list(contact.identities.all())
    return identities[0].value if identities else f"Contact #{contact.pk}"


@register.filter
def list_cursor(conversation) -> str:
    return f"{conversation.last_activity_at.isoformat()}|{conversation.pk}"


@register.filter
def sorted_labels(conversation) -> list:
    return sorted(conversation.labels.all(), key=lambda label: label.name)


@register.filter
def label_names(conversation) -> list[str]:
    return sorted(label.name for label in conversation.labels.all())


@register.filter
def get_item(mapping, key):
    return (mapping or {}).get(key)
