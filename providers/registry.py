"""get_provider(channel): the one place a kind string becomes a provider class."""

from importlib import import_module

from .base import Provider
from .errors import ConfigurationError

# kind -> "module:Class". A module is imported only when its kind is used.
PROVIDERS: dict[str, str] = {
    "whatsapp_cloud": "providers.whatsapp_cloud:WhatsAppCloudProvider",
    "telegram": "providers.telegram:TelegramProvider",
    "twilio_sms": "providers.twilio:TwilioSmsProvider",
    "twilio_whatsapp": "providers.twilio:TwilioWhatsAppProvider",
}


def provider_class(kind: str) -> type[Provider]:
    try:
        target = PROVIDERS[kind]
    except KeyError:
        raise ConfigurationError(f"no provider for channel kind {kind!r} yet") from None
    module_name, class_name = target.split(":")
    return getattr(import_module(module_name), class_name)


def get_provider(channel) -> Provider:
    return provider_class(channel.kind)(channel)
