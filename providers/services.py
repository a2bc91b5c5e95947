"""Channel writes: create, update, delete, test, and the platform hooks run on activation and pause.

Validation lives here (not in forms or serializers) so the admin and the REST API share one code path.
Errors are `ValidationError({field: [ValidationError(message, code, params={"key": ...})]})` where field
is one of kind, name, config, credentials, status, and `params["key"]` names the config or credential
key at fault (the admin uses it to put the message next to the right input).

Credentials are never logged, never put in an error message and never returned: `credentials_masked()`
is the only view of them meant for people.
"""

import logging
import re
import secrets
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from organizations.models import Organization

from .base import CheckResult, Provider
from .errors import ConfigurationError, ProviderError, TransientFailure
from .kinds import EMAIL_ESPS, KINDS, TELEGRAM_MODES, KindSpec
from .models import Channel, CredentialsDecryptionError
from .registry import PROVIDERS, get_provider

logger = logging.getLogger(__name__)

MASK = "••••"
E164_RE = re.compile(r"^\+[1-9]\d{1,14}$")
TELEGRAM_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
# Keys whose values are not plain strings.
STRUCTURED_CONFIG_KEYS = {"allowed_origins", "pre_chat_form", "use_tls", "smtp_port", "imap_port", "sandbox"}
SETTABLE_STATUSES = (Channel.Status.ACTIVE, Channel.Status.PAUSED)


# --- validation ---------------------------------------------------------------------------------------
class _Errors:
    def __init__(self) -> None:
        self.by_field: dict[str, list[ValidationError]] = {}

    def add(self, field: str, message: str, *, code: str = "invalid", key: str = "") -> None:
        # With params set, Django renders `message % params`: a literal % (from user input) must be doubled.
        self.by_field.setdefault(field, []).append(
            ValidationError(message.replace("%", "%%"), code=code, params={"key": key})
        )

    def raise_if_any(self) -> None:
        if self.by_field:
            raise ValidationError(self.by_field)


def _clean_mapping(value, field: str, errors: _Errors) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.add(field, f"{field} must be an object of key/value pairs.", code="type")
        return {}
    return dict(value)


def _normalize_config(spec: KindSpec, config: dict, errors: _Errors) -> dict:
    allowed = set(spec.config) | set(spec.optional_config)
    out: dict = {}
    for key, value in config.items():
        if key not in allowed:
            errors.add(
                "config", f"{key}: unknown key for a {spec.kind} channel.", code="unknown_key", key=key
            )
            continue
        if isinstance(value, str):
            value = value.strip()
        elif (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and key not in STRUCTURED_CONFIG_KEYS
        ):
            value = str(value)
        if value is None or value == "" or value == []:
            continue
        if key not in STRUCTURED_CONFIG_KEYS and not isinstance(value, str):
            errors.add("config", f"{key}: must be a string.", code="type", key=key)
            continue
        out[key] = value
    for key in spec.config:
        if key not in out:
            errors.add("config", f"{key}: this key is required.", code="required", key=key)
    return out


def _validate_config_values(spec: KindSpec, config: dict, errors: _Errors) -> None:
    kind = spec.kind
    if "api_base_url" in config:
        parts = urlsplit(config["api_base_url"])
        if parts.scheme not in ("http", "https") or not parts.netloc:
            errors.add("config", "api_base_url: must be an http(s) URL.", key="api_base_url")
    if kind == "telegram" and "mode" in config and config["mode"] not in TELEGRAM_MODES:
        errors.add("config", f"mode: must be one of {', '.join(TELEGRAM_MODES)}.", code="choice", key="mode")
    if kind == "email":
        if "esp" in config and config["esp"] not in EMAIL_ESPS:
            errors.add("config", f"esp: must be one of {', '.join(EMAIL_ESPS)}.", code="choice", key="esp")
        if "from_email" in config:
            try:
                validate_email(config["from_email"])
            except ValidationError:
                errors.add("config", "from_email: must be an e-mail address.", key="from_email")
        if "domain" in config and not re.fullmatch(
            r"(?=.{1,253}$)([A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}", config["domain"]
        ):
            errors.add("config", "domain: must be a domain name such as example.com.", key="domain")
        for port_key in ("smtp_port", "imap_port"):
            if port_key in config:
                try:
                    port = int(config[port_key])
                except (TypeError, ValueError):
                    port = 0
                if not 0 < port < 65536:
                    errors.add("config", f"{port_key}: must be a port number.", key=port_key)
                else:
                    config[port_key] = port
        if "use_tls" in config and not isinstance(config["use_tls"], bool):
            errors.add("config", "use_tls: must be true or false.", key="use_tls")
    if kind in ("twilio_sms", "twilio_whatsapp") and "from" in config:
        value = re.sub(r"[\s().-]", "", config["from"])
        if kind == "twilio_whatsapp":
            number = value[len("whatsapp:") :] if value.lower().startswith("whatsapp:") else value
            if E164_RE.match(number):
                config["from"] = f"whatsapp:{number}"
            else:
                errors.add(
                    "config",
                    "from: must be whatsapp:+<E.164 number>, e.g. whatsapp:+14155238886.",
                    key="from",
                )
        elif E164_RE.match(value):
            config["from"] = value
        else:
            errors.add("config", "from: must be an E.164 number, e.g. +15005550006.", key="from")
    if kind in ("twilio_sms", "twilio_whatsapp") and "account_sid" in config:
        if not re.fullmatch(r"AC[0-9a-fA-F]{32}", config["account_sid"]):
            errors.add(
                "config", "account_sid: must look like AC followed by 32 hex characters.", key="account_sid"
            )
    if kind == "webchat" and "allowed_origins" in config:
        config["allowed_origins"] = _clean_origins(config["allowed_origins"], errors)


def _clean_origins(value, errors: _Errors) -> list[str]:
    if isinstance(value, str):
        errors.add(
            "config", "allowed_origins: must be a list of origins.", code="type", key="allowed_origins"
        )
        return []
    if not isinstance(value, list) or not value:
        errors.add("config", "allowed_origins: must be a non-empty list of origins.", key="allowed_origins")
        return []
    origins = []
    for item in value:
        parts = urlsplit(item.strip()) if isinstance(item, str) else None
        if (
            parts is None
            or parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or parts.username
        ):
            errors.add(
                "config",
                f"allowed_origins: {str(item)[:100]!r} is not an origin such as https://shop.example.com.",
                key="allowed_origins",
            )
            continue
        origin = f"{parts.scheme}://{parts.netloc.lower()}"
        if origin not in origins:
            origins.append(origin)
    return origins


def _merge_credentials(spec: KindSpec, stored: dict, given: dict, errors: _Errors) -> dict:
    """Given non-empty values replace stored ones; absent or empty keys keep them (write-only fields)."""
    allowed = set(spec.credentials) | set(spec.optional_credentials) | set(spec.generated)
    merged = {k: v for k, v in stored.items() if k in allowed}
    for key, value in given.items():
        if key not in allowed:
            errors.add(
                "credentials", f"{key}: unknown key for a {spec.kind} channel.", code="unknown_key", key=key
            )
            continue
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            errors.add("credentials", f"{key}: must be a string.", code="type", key=key)
            continue
        value = value.strip()
        if value:
            merged[key] = value
    for key in spec.generated:
        if not merged.get(key):
            merged[key] = secrets.token_urlsafe(32)
    for key in spec.credentials:
        if not merged.get(key):
            errors.add("credentials", f"{key}: this key is required.", code="required", key=key)
    if (
        spec.kind == "telegram"
        and "secret_token" in merged
        and not TELEGRAM_SECRET_RE.match(merged["secret_token"])
    ):
        errors.add(
            "credentials",
            "secret_token: only letters, digits, _ and - are allowed (1 to 256 characters).",
            key="secret_token",
        )
    return merged


def _validate(
    *, kind: str, name: str, config, credentials, stored_credentials: dict, status: str | None = None
) -> tuple[KindSpec, str, dict, dict]:
    errors = _Errors()
    spec = KINDS.get(kind)
    if spec is None:
        errors.add(
            "kind",
            f"Unknown channel kind {str(kind)[:40]!r}; expected one of {', '.join(KINDS)}.",
            code="choice",
        )
        errors.raise_if_any()
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name:
        errors.add("name", "A channel needs a name.", code="required")
    elif len(name) > Channel._meta.get_field("name").max_length:
        errors.add("name", "Names are at most 120 characters.", code="max_length")
    if status is not None and status not in SETTABLE_STATUSES:
        errors.add("status", f"status must be one of {', '.join(SETTABLE_STATUSES)}.", code="choice")
    config = _normalize_config(spec, _clean_mapping(config, "config", errors), errors)
    _validate_config_values(spec, config, errors)
    merged = _merge_credentials(
        spec, stored_credentials, _clean_mapping(credentials, "credentials", errors), errors
    )
    errors.raise_if_any()
    return spec, name, config, merged


def _provider(channel: Channel) -> Provider | None:
    """The channel's provider, or None while its kind has no provider module yet."""
    target = PROVIDERS.get(channel.kind)
    if target is None:
        return None
    try:
        return get_provider(channel)
    except ConfigurationError:
        return None
    except ModuleNotFoundError as exc:
        if exc.name != target.split(":")[0]:
            raise
        return None


def _lookup_key(channel: Channel, spec: KindSpec) -> str:
    provider = _provider(channel)
    if provider is not None:
        return (provider.lookup_key() or "")[:200]
    first = channel.config.get(spec.config[0], "") if spec.config else ""
    if isinstance(first, list):
        first = first[0] if first else ""
    return str(first)[:200]


def _scrub(text: str, channel: Channel) -> str:
    """Remove any credential value a platform or library echoed into an error text."""
    try:
        values = [v for v in channel.credentials.values() if isinstance(v, str) and len(v) >= 4]
    except CredentialsDecryptionError:
        values = []
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text[:2000]


# --- writes -------------------------------------------------------------------------------------------
def channel_create(
    *, organization: Organization, kind: str, name: str, config: dict, credentials: dict
) -> Channel:
    """Validate and store a channel; generated credentials (Telegram secret_token, web chat identity
    secret) are created when absent. Raises ValidationError. On commit, queues channel_activate_task
    (Telegram's setWebhook and the like)."""
    spec, name, config, merged = _validate(
        kind=kind, name=name, config=config, credentials=credentials, stored_credentials={}
    )
    channel = Channel(
        organization=organization, kind=kind, name=name, config=config, status=Channel.Status.ACTIVE
    )
    channel.credentials = merged
    channel.lookup_key = _lookup_key(channel, spec)
    with transaction.atomic():
        channel.save()
        _queue_hook(channel.pk, activate=True)
    logger.info("channel %s created (kind=%s, organization=%s)", channel.pk, kind, organization.pk)
    return channel


def _prepare_update(
    stored: Channel, *, name: str | None, config: dict | None, credentials: dict | None, status: str | None
) -> tuple[KindSpec, str, dict, dict, str | None]:
    new_config = dict(stored.config or {})
    if config is not None:
        if not isinstance(config, dict):
            raise ValidationError({"config": ["config must be an object of key/value pairs."]})
        new_config.update(config)
    if status == stored.status:
        status = None
    spec, new_name, new_config, merged = _validate(
        kind=stored.kind,
        name=stored.name if name is None else name,
        config=new_config,
        credentials=credentials or {},
        stored_credentials=stored.credentials,
        status=status,
    )
    return spec, new_name, new_config, merged, status


def channel_validate(
    *,
    kind: str,
    name: str | None,
    config: dict | None,
    credentials: dict | None,
    channel: Channel | None = None,
) -> None:
    """Raise the ValidationError that channel_create (channel None) or channel_update would raise,
    without writing anything. Forms call it from clean() so errors show next to the inputs."""
    if channel is None:
        _validate(kind=kind, name=name or "", config=config, credentials=credentials, stored_credentials={})
    else:
        _prepare_update(channel, name=name, config=config, credentials=credentials, status=None)


def channel_update(
    *,
    channel: Channel,
    name: str | None = None,
    config: dict | None = None,
    credentials: dict | None = None,
    status: str | None = None,
) -> Channel:
    """Change a channel. None leaves a part as it is.

    config is merged over the stored config (a key given as None or "" is removed); credentials are
    merged the same way except that absent or empty values keep the stored secret, which is how
    write-only secret inputs work. status may be "active" or "paused": a change queues
    channel_activate_task or channel_pause_task on commit. Raises ValidationError.
    """
    with transaction.atomic():
        locked = Channel.objects.select_for_update().get(pk=channel.pk)
        spec, new_name, new_config, merged, status = _prepare_update(
            locked, name=name, config=config, credentials=credentials, status=status
        )
        locked.name = new_name
        locked.config = new_config
        locked.credentials = merged
        locked.lookup_key = _lookup_key(locked, spec)
        if status is not None:
            locked.status = status
            _queue_hook(locked.pk, activate=status == Channel.Status.ACTIVE)
        locked.save()
    logger.info("channel %s updated", locked.pk)
    channel.refresh_from_db()
    return channel


def channel_delete(*, channel: Channel) -> None:
    """Delete a channel, then (after commit, best effort) run an active channel's platform pause hook,
    e.g. Telegram deleteWebhook. The hook runs on a provider built before the delete, so it never runs
    inside a transaction (the admin deletes inside one) and a failure only logs."""
    provider = _provider(channel) if channel.status == Channel.Status.ACTIVE else None
    pk = channel.pk
    with transaction.atomic():
        channel.delete()
        if provider is not None:
            transaction.on_commit(lambda: _pause_best_effort(provider, pk))
    logger.info("channel %s deleted", pk)


def _pause_best_effort(provider: Provider, channel_id: int) -> None:
    try:
        provider.on_pause()
    except ProviderError as exc:
        logger.warning(
            "channel %s: pause hook failed after delete: %s", channel_id, _scrub(str(exc), provider.channel)
        )


def channel_test(*, channel: Channel) -> CheckResult:
    """Make a real, harmless call to the platform ("test connection"). Never call inside a transaction.

    Stores last_checked_at, and on failure last_error/last_error_at; the result never carries secrets.
    """
    try:
        provider = _provider(channel)
        if provider is None:
            raise NotImplementedError
        result = provider.check()
    except NotImplementedError:
        result = CheckResult(False, f"Connection tests are not available for {channel.kind} channels yet.")
    except CredentialsDecryptionError:
        result = CheckResult(False, "The stored credentials do not decrypt: check FIELD_ENCRYPTION_KEY.")
    except ProviderError as exc:
        result = CheckResult(False, str(exc) or exc.__class__.__name__)
    result = CheckResult(result.ok, _scrub(result.detail, channel))
    now = timezone.now()
    updates: dict = {"last_checked_at": now}
    if not result.ok:
        updates.update(last_error=result.detail, last_error_at=now)
    Channel.objects.filter(pk=channel.pk).update(**updates)
    for field, value in updates.items():
        setattr(channel, field, value)
    logger.info("channel %s tested: ok=%s", channel.pk, result.ok)
    return result


def credentials_masked(channel: Channel) -> dict:
    """key -> "••••" plus the last 4 characters for values longer than 8, else "••••" alone."""
    try:
        stored = channel.credentials
    except CredentialsDecryptionError:
        return {}
    return {
        key: MASK + value[-4:] if isinstance(value, str) and len(value) > 8 else MASK
        for key, value in sorted(stored.items())
    }


# --- platform hooks (run by providers.tasks) ------------------------------------------------------------
def _queue_hook(channel_id: int, *, activate: bool) -> None:
    from . import tasks

    task = tasks.channel_activate_task if activate else tasks.channel_pause_task
    # robust: a broker hiccup after commit is logged by Django; the channel itself is saved.
    transaction.on_commit(lambda: task.delay(channel_id), robust=True)


def channel_error_record(*, channel_id: int, reason: str) -> None:
    """Mark a channel as failing (status error) with a reason shown to admins."""
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        return
    reason = _scrub(reason, channel)
    Channel.objects.filter(pk=channel_id).update(
        status=Channel.Status.ERROR, last_error=reason, last_error_at=timezone.now()
    )
    logger.warning("channel %s: %s", channel_id, reason)


def _run_hook(*, channel_id: int, expected_status: str, hook: str) -> None:
    channel = Channel.objects.filter(pk=channel_id).first()
    # Skipped when the channel is gone or changed its mind since the task was queued.
    if channel is None or channel.status != expected_status:
        return
    try:
        provider = _provider(channel)
        if provider is None:
            return
        getattr(provider, hook)()
    except TransientFailure:
        raise
    except (ProviderError, CredentialsDecryptionError) as exc:
        label = "activation" if hook == "on_activate" else "pause"
        channel_error_record(channel_id=channel_id, reason=f"{label} failed: {exc}")


def channel_platform_activate(*, channel_id: int) -> None:
    """Run the provider's on_activate() (Telegram setWebhook) for an active channel, outside any
    transaction. TransientFailure propagates (the task retries); other provider errors set status
    error with last_error."""
    _run_hook(channel_id=channel_id, expected_status=Channel.Status.ACTIVE, hook="on_activate")


def channel_platform_pause(*, channel_id: int) -> None:
    """Run the provider's on_pause() (Telegram deleteWebhook) for a paused channel; as above."""
    _run_hook(channel_id=channel_id, expected_status=Channel.Status.PAUSED, hook="on_pause")
