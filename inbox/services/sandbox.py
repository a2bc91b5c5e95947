"""Play the customer in the demo: real, signed platform webhooks posted to our own webhook URLs.

Everything goes over HTTP through the same intake a platform uses (signature check, dedup, worker),
so the sandbox shows the product exactly as it runs, minus the real platform.
"""

import json
import time
from urllib.parse import parse_qs, urlencode

import requests

from inbox.errors import InboxError
from inbox.models import Message
from providers.fakes.telegram import FakeTelegram
from providers.fakes.twilio import FakeTwilio
from providers.fakes.twilio import sign as twilio_sign
from providers.fakes.whatsapp import FakeWhatsApp
from providers.models import Channel
from providers.whatsapp_cloud import sign as meta_sign

SANDBOX_KINDS = ("whatsapp_cloud", "telegram", "twilio_sms", "twilio_whatsapp")


def _post(url: str, body: bytes, headers: dict) -> None:
    try:
        response = requests.post(url, data=body, headers=headers, timeout=10)
    except requests.RequestException as exc:
        raise InboxError("sandbox_unreachable", f"Could not reach {url}: {exc}", status_code=502) from exc
    if response.status_code != 200:
        raise InboxError(
            "sandbox_refused",
            f"The webhook answered {response.status_code}: {response.text[:200]}",
            status_code=502,
        )


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def sandbox_customer_message(*, channel: Channel, sender: str, name: str, text: str) -> None:
    """Post `text` from customer `sender` (a phone number, or a Telegram chat id) to `channel`."""
    if not (channel.config or {}).get("sandbox") or channel.kind not in SANDBOX_KINDS:
        raise InboxError("not_sandbox", "Only sandbox channels can be played from here.", status_code=400)
    text = (text or "").strip()
    if not text:
        raise InboxError("empty_message", "Write something to send.", status_code=400)
    creds, config, url = channel.credentials, channel.config, channel.webhook_url
    if channel.kind == "whatsapp_cloud":
        payload = FakeWhatsApp.inbound_text_payload(config["phone_number_id"], _digits(sender), text, name)
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": meta_sign(body, creds["app_secret"]),
        }
    elif channel.kind == "telegram":
        chat_id = int(_digits(sender) or "1")
        payload = FakeTelegram.update_text(
            time.time_ns() // 1000, chat_id, text, first_name=name or "Customer"
        )
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": creds["secret_token"],
        }
    else:
        prefix = "whatsapp:" if channel.kind == "twilio_whatsapp" else ""
        form = FakeTwilio.inbound_sms_form(
            config["account_sid"], f"{prefix}+{_digits(sender)}", config["from"], text, profile_name=name
        )
        body = urlencode(form).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_sign(url, form, creds["auth_token"]),
        }
    _post(url, body, headers)


def sandbox_status(*, message: Message, status: str) -> None:
    """Have the fake platform report `status` (delivered, read) of an outbound sandbox message."""
    channel = message.channel
    if not (channel.config or {}).get("sandbox") or not message.platform_message_id:
        raise InboxError(
            "not_sandbox", "Only sent messages of sandbox channels can be acknowledged.", status_code=400
        )
    if status not in ("delivered", "read"):
        raise InboxError("invalid", "status must be delivered or read", status_code=400)
    creds, config, url = channel.credentials, channel.config, channel.webhook_url
    to = message.content.get("to", "")
    if channel.kind == "whatsapp_cloud":
        payload = FakeWhatsApp.status_payload(
            config["phone_number_id"], message.platform_message_id, status, _digits(to)
        )
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": meta_sign(body, creds["app_secret"]),
        }
    elif channel.kind in ("twilio_sms", "twilio_whatsapp"):
        prefix = "whatsapp:" if channel.kind == "twilio_whatsapp" else ""
        form = FakeTwilio.status_form(
            config["account_sid"],
            message.platform_message_id,
            status,
            from_=config["from"],
            to=f"{prefix}{to}",
        )
        body = urlencode(form).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_sign(url, form, creds["auth_token"]),
        }
    else:
        raise InboxError("unsupported", "Telegram reports no delivery statuses to bots.", status_code=400)
    _post(url, body, headers)


def sandbox_platform_received(*, channel: Channel) -> list[dict]:
    """What the fake platform received for this channel (the agents' replies), newest first."""
    from providers.sandbox import fake_base_url

    try:
        response = requests.get(f"{fake_base_url(channel.kind)}/_fake/requests", timeout=3)
        recorded = response.json()
    except (requests.RequestException, ValueError):
        return []
    out = []
    for item in recorded:
        path, body = item["path"], item["body"]
        if channel.kind == "whatsapp_cloud" and path.endswith("/messages") and '"type"' in body:
            data = json.loads(body)
            out.append(
                {
                    "to": data.get("to"),
                    "text": (data.get("text") or {}).get("body", f"[{data.get('type')}]"),
                    "at": item["at"],
                }
            )
        elif channel.kind == "telegram" and path.endswith(("/sendMessage", "/sendPhoto", "/sendDocument")):
            data = json.loads(body) if body.startswith("{") else {}
            out.append(
                {
                    "to": str(data.get("chat_id", "")),
                    "text": data.get("text") or data.get("caption", ""),
                    "at": item["at"],
                }
            )
        elif (
            channel.kind.startswith("twilio") and path.endswith("/Messages.json") and item["method"] == "POST"
        ):
            data = {k: v[0] for k, v in parse_qs(body).items()}
            if data.get("From") == channel.config.get("from"):
                out.append({"to": data.get("To"), "text": data.get("Body", ""), "at": item["at"]})
    return sorted(out, key=lambda r: r["at"], reverse=True)[:50]


def sandbox_channels(*, organization) -> list[Channel]:
    return [
        c
        for c in Channel.objects.filter(organization=organization, kind__in=SANDBOX_KINDS)
        if (c.config or {}).get("sandbox")
    ]
