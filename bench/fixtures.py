"""Benchmark data made through the product's own services where it matters (channels), and in bulk
where only volume matters (agents, sessions, contacts). Call after lib.django_setup()."""

from __future__ import annotations

import secrets
from datetime import timedelta

WA_TOKEN = "bench-wa-token"
WA_SECRET = "bench-app-secret"
TWILIO_SID = "AC" + "b" * 32
TWILIO_TOKEN = "bench-twilio-auth-token"


def organization(name: str = "Bench"):
    from organizations.models import Organization

    return Organization.objects.create(name=name, slug=f"{name.lower()}-{secrets.token_hex(3)}")


def agents(org, n: int) -> list[str]:
    """n agents (members of org) with a logged-in session each; returns their Cookie header values."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from organizations.middleware import SESSION_KEY as ORG_KEY
    from organizations.models import Membership

    User = get_user_model()
    tag = secrets.token_hex(3)
    users = User.objects.bulk_create(
        [User(username=f"agent{i}-{tag}", email=f"agent{i}-{tag}@bench.test", password="!" + secrets.token_hex(8))
         for i in range(n)],
        batch_size=1000,
    )
    Membership.objects.bulk_create(
        [Membership(user=u, organization=org, role="agent") for u in users], batch_size=1000
    )
    store = SessionStore()
    expire = timezone.now() + timedelta(days=1)
    sessions, cookies = [], []
    for u in users:
        key = secrets.token_hex(16)
        data = {
            SESSION_KEY: str(u.pk),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: u.get_session_auth_hash(),
            ORG_KEY: org.pk,
        }
        sessions.append(Session(session_key=key, session_data=store.encode(data), expire_date=expire))
        cookies.append(f"sessionid={key}")
    Session.objects.bulk_create(sessions, batch_size=1000)
    return cookies


def channel(org, kind: str, name: str, config: dict, credentials: dict):
    from providers.services import channel_create

    return channel_create(organization=org, kind=kind, name=name, config=config, credentials=credentials)


def whatsapp_channel(org, fake_url: str, phone_number_id: str, rate: float | None = None):
    config = {"phone_number_id": phone_number_id, "business_account_id": "102290129340398",
              "api_base_url": fake_url + "/v21.0"}
    if rate:
        config["rate_limit_per_second"] = rate
    return channel(org, "whatsapp_cloud", f"WhatsApp {phone_number_id[-3:]}", config,
                   {"access_token": WA_TOKEN, "app_secret": WA_SECRET, "verify_token": "bench-verify"})


def telegram_channel(org, fake_url: str, n: int, rate: float | None = None):
    config = {"mode": "webhook", "api_base_url": fake_url}
    if rate:
        config["rate_limit_per_second"] = rate
    token = f"{7000000 + n}:bench-telegram-{n}"
    return channel(org, "telegram", f"Telegram {n}", config, {"bot_token": token, "secret_token": f"bench-secret-{n}"})


def twilio_channel(org, fake_url: str, n: int):
    config = {"account_sid": TWILIO_SID, "from": f"+1555020{n:04d}", "api_base_url": fake_url}
    return channel(org, "twilio_sms", f"SMS {n}", config, {"auth_token": TWILIO_TOKEN})


def conversations(org, ch, n: int, *, start: int = 0) -> list[int]:
    """n open conversations on channel ch, each with a contact reachable on it (customer wrote just now)."""
    from django.utils import timezone

    from inbox.models import Contact, ContactIdentity, Conversation
    from inbox.services.messages import IDENTITY_KIND_FOR_CHANNEL

    kind = IDENTITY_KIND_FOR_CHANNEL[ch.kind]
    now = timezone.now()
    contacts = Contact.objects.bulk_create(
        [Contact(organization=org, name=f"Customer {ch.pk}-{i}") for i in range(n)], batch_size=2000
    )

    def value(i: int) -> str:
        if kind == ContactIdentity.Kind.TELEGRAM:
            return str(100000000 + ch.pk * 1000000 + start + i)
        return f"+1555{ch.pk:03d}{start + i:05d}"

    ContactIdentity.objects.bulk_create(
        [ContactIdentity(organization=org, contact=c, kind=kind, value=value(i), channel=ch)
         for i, c in enumerate(contacts)],
        batch_size=2000,
    )
    convs = Conversation.objects.bulk_create(
        [Conversation(organization=org, channel=ch, contact=c, last_activity_at=now, last_inbound_at=now)
         for c in contacts],
        batch_size=2000,
    )
    return [c.pk for c in convs]
