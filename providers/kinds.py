"""Channel kinds and the config/credential keys each one requires (CONTRACT.md, docs/channels/)."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class KindSpec:
    kind: str
    label: str
    config: tuple[str, ...] = ()
    credentials: tuple[str, ...] = ()
    optional_config: tuple[str, ...] = ("api_base_url", "rate_limit_per_second", "sandbox")
    optional_credentials: tuple[str, ...] = ()
    # Credentials generated when absent (e.g. Telegram's secret_token).
    generated: tuple[str, ...] = field(default_factory=tuple)


KINDS: dict[str, KindSpec] = {
    spec.kind: spec
    for spec in [
        KindSpec(
            "whatsapp_cloud",
            "WhatsApp (Cloud API)",
            config=("phone_number_id", "business_account_id"),
            credentials=("access_token", "app_secret", "verify_token"),
        ),
        KindSpec(
            "telegram",
            "Telegram",
            config=("mode",),
            credentials=("bot_token",),
            optional_credentials=("secret_token",),
            generated=("secret_token",),
        ),
        KindSpec(
            "twilio_sms",
            "SMS (Twilio)",
            config=("account_sid", "from"),
            optional_config=("api_base_url", "messaging_service_sid", "rate_limit_per_second", "sandbox"),
            credentials=("auth_token",),
            optional_credentials=("webhook_shared_key",),
        ),
        KindSpec(
            "twilio_whatsapp",
            "WhatsApp (Twilio)",
            config=("account_sid", "from"),
            optional_config=("api_base_url", "messaging_service_sid", "rate_limit_per_second", "sandbox"),
            credentials=("auth_token",),
            optional_credentials=("webhook_shared_key",),
        ),
        KindSpec(
            "messenger",
            "Facebook Messenger",
            config=("page_id",),
            credentials=("page_access_token", "app_secret", "verify_token"),
        ),
        KindSpec(
            "instagram",
            "Instagram",
            config=("instagram_account_id",),
            optional_config=("api_base_url", "rate_limit_per_second", "sandbox", "page_id"),
            credentials=("page_access_token", "app_secret", "verify_token"),
        ),
        KindSpec(
            "email",
            "E-mail",
            config=("esp", "from_email", "domain"),
            optional_config=(
                "api_base_url",
                "rate_limit_per_second",
                "sandbox",
                "from_name",
                "default_subject",
                "region",
                "smtp_host",
                "smtp_port",
                "smtp_security",
                "imap_host",
                "imap_port",
                "imap_security",
                "imap_mailbox",
                "imap_since_days",
            ),
            optional_credentials=(
                "api_key",
                "webhook_signing_key",
                "webhook_verification_key",
                "webhook_secret",
                "secret_key",
                "access_key_id",
                "secret_access_key",
                "username",
                "password",
                "smtp_username",
                "smtp_password",
                "imap_username",
                "imap_password",
            ),
        ),
        KindSpec(
            "webchat",
            "Website chat",
            config=("allowed_origins",),
            optional_config=(
                "api_base_url",
                "rate_limit_per_second",
                "sandbox",
                "pre_chat_form",
                "greeting",
                "offline_message",
            ),
            optional_credentials=("identity_secret",),
            generated=("identity_secret",),
        ),
    ]
}

KIND_CHOICES = [(k, spec.label) for k, spec in KINDS.items()]
TELEGRAM_MODES = ("webhook", "polling")
EMAIL_ESPS = ("mailgun", "sendgrid", "postmark", "amazon_ses", "mailjet", "brevo", "smtp", "imap")
