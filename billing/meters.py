"""Meter names and the plain values the price book is keyed by.

Meters are strings so the pipeline can meter a new channel kind without a migration:

    message.out.<channel_kind>              one outbound message (SMS: one per segment)
    message.out.<channel_kind>.<category>   WhatsApp: Meta bills per message by template category
    message.in.<channel_kind>               an inbound message (metered only where priced)

WhatsApp pricing: https://developers.facebook.com/docs/whatsapp/pricing — marketing, utility and
authentication templates are billed per delivered message; free-form replies inside the 24-hour
customer service window are "service" messages, free unless the price book prices them.
"""

import phonenumbers

WHATSAPP_KINDS = frozenset({"whatsapp_cloud", "twilio_whatsapp"})
WHATSAPP_CATEGORIES = ("marketing", "utility", "authentication", "service")
SERVICE = "service"


def message_meter(*, channel_kind: str, direction: str = "out", category: str = "") -> str:
    """The meter of one message. For WhatsApp outbound, a template's category (marketing, utility,
    authentication) or "service" for a free-form reply; unknown categories count as marketing, the
    category Meta applies when it re-categorizes a template."""
    if direction == "in":
        return f"message.in.{channel_kind}"
    if channel_kind in WHATSAPP_KINDS:
        category = (category or SERVICE).lower()
        if category not in WHATSAPP_CATEGORIES:
            category = "marketing"
        return f"message.out.{channel_kind}.{category}"
    return f"message.out.{channel_kind}"


def country_for_address(address: str) -> str:
    """ISO 3166 alpha-2 of a phone number ("+4915..." or "whatsapp:+4915..."), "" for anything else."""
    value = (address or "").removeprefix("whatsapp:").strip()
    if not value.startswith("+"):
        return ""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return ""
    return phonenumbers.region_code_for_number(number) or ""
