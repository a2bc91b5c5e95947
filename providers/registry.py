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
    "messenger": "providers.meta_messenger:MessengerProvider",
    "instagram": "providers.meta_messenger:InstagramProvider",
    "email": "providers.email:EmailProvider",
    "webchat": "providers.webchat:WebchatProvider",
}


def provider_class(kind: str) -> type[Provider]:
    try:
        target = PROVIDERS[kind]
    except KeyError:
        raise ConfigurationError(f"no provider for channel kind {kind!r} yet") from None
    module_name, class_name = target.split(":")
    try:
        module = import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise ConfigurationError(f"the {kind!r} provider is not installed in this build") from exc
    return getattr(module, class_name)


def get_provider(channel) -> Provider:
    return provider_class(channel.kind)(channel)
