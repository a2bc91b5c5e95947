"""The credential-free demo: sandbox channels wired to local fake platforms (providers/fakes).

`manage.py run_fakes` serves the fakes; `manage.py demo_sandbox` creates one sandbox channel of each
kind in the demo organization pointing at them. Sandbox credentials are fixed, public and only valid
against the fakes, which is why they may live in code.
"""

from django.conf import settings

WHATSAPP_PHONE_NUMBER_ID = "100000000000001"
WHATSAPP_TOKEN = "sandbox-whatsapp-token"
TELEGRAM_BOT_TOKEN = "1000001:sandbox-telegram-bot"
TWILIO_ACCOUNT_SID = "AC" + "0" * 32
TWILIO_AUTH_TOKEN = "sandbox-twilio-auth-token"
TWILIO_SMS_FROM = "+15550100001"
TWILIO_WHATSAPP_FROM = "whatsapp:+15550100002"

FAKE_OFFSETS = {"whatsapp_cloud": 0, "telegram": 1, "twilio": 2}


def fake_base_url(kind: str) -> str:
    offset = FAKE_OFFSETS["twilio" if kind.startswith("twilio") else kind]
    return f"http://127.0.0.1:{settings.FAKES_PORT_BASE + offset}"


def sandbox_channel_specs() -> list[dict]:
    """(kind, name, config, credentials) of every sandbox channel."""
    return [
        {
            "kind": "whatsapp_cloud",
            "name": "WhatsApp (sandbox)",
            "config": {
                "phone_number_id": WHATSAPP_PHONE_NUMBER_ID,
                "business_account_id": "100000000000002",
                "api_base_url": fake_base_url("whatsapp_cloud") + "/v21.0",
                "sandbox": True,
            },
            "credentials": {
                "access_token": WHATSAPP_TOKEN,
                "app_secret": "sandbox-app-secret",
                "verify_token": "sandbox-verify",
            },
        },
        {
            "kind": "telegram",
            "name": "Telegram (sandbox)",
            "config": {"mode": "webhook", "api_base_url": fake_base_url("telegram"), "sandbox": True},
            "credentials": {"bot_token": TELEGRAM_BOT_TOKEN, "secret_token": "sandbox-telegram-secret"},
        },
        {
            "kind": "twilio_sms",
            "name": "SMS (sandbox)",
            "config": {
                "account_sid": TWILIO_ACCOUNT_SID,
                "from": TWILIO_SMS_FROM,
                "api_base_url": fake_base_url("twilio_sms"),
                "sandbox": True,
            },
            "credentials": {"auth_token": TWILIO_AUTH_TOKEN},
        },
        {
            "kind": "twilio_whatsapp",
            "name": "WhatsApp via Twilio (sandbox)",
            "config": {
                "account_sid": TWILIO_ACCOUNT_SID,
                "from": TWILIO_WHATSAPP_FROM,
                "api_base_url": fake_base_url("twilio_whatsapp"),
                "sandbox": True,
            },
            "credentials": {"auth_token": TWILIO_AUTH_TOKEN},
        },
    ]


def start_fakes(port_base: int | None = None):
    """Start every fake platform on its fixed port; returns them (call .stop() on each)."""
    from providers.fakes.telegram import FakeTelegram
    from providers.fakes.twilio import FakeTwilio
    from providers.fakes.whatsapp import FakeWhatsApp

    base = settings.FAKES_PORT_BASE if port_base is None else port_base
    factories = [
        lambda: FakeWhatsApp(
            access_token=WHATSAPP_TOKEN,
            phone_number_id=WHATSAPP_PHONE_NUMBER_ID,
            port=base + FAKE_OFFSETS["whatsapp_cloud"],
        ),
        lambda: FakeTelegram(port=base + FAKE_OFFSETS["telegram"]),
        lambda: FakeTwilio(TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, port=base + FAKE_OFFSETS["twilio"]),
    ]
    fakes = []
    try:
        for make in factories:
            fakes.append(make())
    except OSError:
        for fake in fakes:  # a port was taken: free the ones already bound
            fake.stop()
        raise
    fakes[1].require_https = False  # the demo's webhook URL is plain http://127.0.0.1
    return [fake.start() for fake in fakes]
