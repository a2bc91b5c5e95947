"""Channel and webhook-event admin.

Channels are written only through providers.services (validation, generated secrets, activation
hooks). Secrets are write-only here: credential inputs never render a value, and the page shows at
most the masked form (••••abcd) of what is stored.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.response import TemplateResponse
from django.utils.html import format_html

from alexia.admin_scoping import OrganizationScopedAdmin, admin_org_ids

from .kinds import EMAIL_ESPS, KINDS, TELEGRAM_MODES, KindSpec
from .models import Channel, WebhookEvent
from .services import (
    channel_create,
    channel_delete,
    channel_test,
    channel_update,
    channel_validate,
    credentials_masked,
)

CONFIG_PREFIX = "config__"
CREDENTIALS_PREFIX = "credentials__"
SECRET_HEADER_PARTS = ("authorization", "token", "signature", "secret", "cookie", "api-key", "apikey")


def copyable(value: str) -> str:
    return format_html(
        '<span class="alexia-copy"><code>{}</code> '
        '<button type="button" class="button" data-copy="{}" '
        "onclick=\"navigator.clipboard.writeText(this.dataset.copy).then(() => {{ this.textContent = 'Copied'; }})\">"
        "Copy</button></span>",
        value,
        value,
    )


# --- the per-kind form ------------------------------------------------------------------------------------
def _label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _config_field(key: str, required: bool) -> forms.Field:
    common = {"required": required, "label": _label(key)}
    if key == "mode":
        return forms.ChoiceField(choices=[(m, m) for m in TELEGRAM_MODES], **common)
    if key == "esp":
        return forms.ChoiceField(choices=[(e, e) for e in EMAIL_ESPS], **common)
    if key == "allowed_origins":
        return forms.CharField(
            widget=forms.Textarea(attrs={"rows": 3}),
            help_text="One origin per line, e.g. https://shop.example.com",
            **common,
        )
    if key in ("smtp_port", "imap_port"):
        return forms.IntegerField(min_value=1, max_value=65535, **common)
    if key == "use_tls":
        return forms.NullBooleanField(**common)
    if key == "pre_chat_form":
        return forms.JSONField(help_text="JSON describing the pre-chat form fields.", **common)
    if key == "greeting":
        return forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), **common)
    if key == "from_email":
        return forms.EmailField(**common)
    if key == "api_base_url":
        return forms.URLField(
            assume_scheme="https",
            help_text="Leave empty to use the real platform. Tests and demos point it at a local fake.",
            **common,
        )
    return forms.CharField(max_length=500, **common)


class ChannelForm(forms.ModelForm):
    """Base of the generated per-kind forms; see channel_form_class()."""

    spec: KindSpec

    class Meta:
        model = Channel
        fields = ["organization", "name"]

    @classmethod
    def config_field_names(cls) -> list[str]:
        return [CONFIG_PREFIX + k for k in (*cls.spec.config, *cls.spec.optional_config)]

    @classmethod
    def credential_field_names(cls) -> list[str]:
        keys = dict.fromkeys((*cls.spec.credentials, *cls.spec.optional_credentials, *cls.spec.generated))
        return [CREDENTIALS_PREFIX + k for k in keys]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.instance.config if self.instance.pk else {}
        masked = credentials_masked(self.instance) if self.instance.pk else {}
        for name in self.config_field_names():
            key = name[len(CONFIG_PREFIX) :]
            if key in stored and name in self.fields:
                value = stored[key]
                self.initial[name] = "\n".join(value) if key == "allowed_origins" else value
        for name in self.credential_field_names():
            key = name[len(CREDENTIALS_PREFIX) :]
            field = self.fields.get(name)
            if field is None:
                continue
            if key in masked:
                field.required = False
                field.help_text = f"Stored: {masked[key]}. Leave empty to keep it."
            elif key in self.spec.generated:
                field.help_text = "Leave empty to generate one."

    def config_values(self) -> dict:
        values = {}
        for name in self.config_field_names():
            key = name[len(CONFIG_PREFIX) :]
            value = self.cleaned_data.get(name)
            if key == "allowed_origins" and isinstance(value, str):
                value = [line.strip() for line in value.replace(",", "\n").splitlines() if line.strip()]
            # None removes the key on update (an emptied optional input); required keys then fail.
            values[key] = None if value in ("", [], None) else value
        return values

    def credential_values(self) -> dict:
        return {
            name[len(CREDENTIALS_PREFIX) :]: self.cleaned_data.get(name) or ""
            for name in self.credential_field_names()
        }

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            channel_validate(
                kind=self.spec.kind,
                name=cleaned.get("name"),
                config={k: v for k, v in self.config_values().items() if v is not None or self.instance.pk},
                credentials=self.credential_values(),
                channel=self.instance if self.instance.pk else None,
            )
        except ValidationError as exc:
            self._add_service_errors(exc)
        return cleaned

    def _add_service_errors(self, exc: ValidationError) -> None:
        for field, errors in exc.error_dict.items():
            for error in errors:
                key = (error.params or {}).get("key", "")
                prefix = {"config": CONFIG_PREFIX, "credentials": CREDENTIALS_PREFIX}.get(field)
                target = prefix + key if prefix and key else field
                self.add_error(target if target in self.fields else None, error.messages)


def channel_form_class(kind: str) -> type[ChannelForm]:
    spec = KINDS[kind]
    attrs: dict = {"spec": spec}
    for key in spec.config:
        attrs[CONFIG_PREFIX + key] = _config_field(key, required=True)
    for key in spec.optional_config:
        attrs[CONFIG_PREFIX + key] = _config_field(key, required=False)
    for key in dict.fromkeys((*spec.credentials, *spec.optional_credentials, *spec.generated)):
        attrs[CREDENTIALS_PREFIX + key] = forms.CharField(
            required=key in spec.credentials and key not in spec.generated,
            label=_label(key),
            strip=True,
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        )
    return type(f"{kind.title().replace('_', '')}ChannelForm", (ChannelForm,), attrs)


# --- channel admin ---------------------------------------------------------------------------------------
@admin.register(Channel)
class ChannelAdmin(OrganizationScopedAdmin):
    list_display = ["name", "kind", "organization", "status", "lookup_key", "last_checked_at", "short_error"]
    list_filter = ["kind", "status", ("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "lookup_key"]
    actions = ["test_connection", "activate", "pause"]
    health_fields = [
        "lookup_key",
        "last_checked_at",
        "last_error",
        "last_error_at",
        "last_webhook_at",
        "last_sent_at",
        "created_at",
    ]

    @admin.display(description="last error")
    def short_error(self, obj) -> str:
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error

    @admin.display(description="kind")
    def kind_label(self, obj) -> str:
        return KINDS[obj.kind].label if obj.kind in KINDS else obj.kind

    @admin.display(description="webhook URL")
    def webhook_url_display(self, obj) -> str:
        return copyable(obj.webhook_url)

    @admin.display(description="tracking webhook URL (delivery events)")
    def tracking_webhook_url_display(self, obj) -> str:
        return copyable(obj.tracking_webhook_url)

    def _kind(self, request, obj) -> str | None:
        if obj is not None:
            return obj.kind
        kind = request.GET.get("kind")
        return kind if kind in KINDS else None

    def get_form(self, request, obj=None, change=False, **kwargs):
        kind = self._kind(request, obj)
        if kind is None:
            raise PermissionDenied("choose a channel kind first")
        kwargs["form"] = channel_form_class(kind)
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        kind = self._kind(request, obj)
        form_class = channel_form_class(kind)
        config = ("Configuration", {"fields": form_class.config_field_names()})
        credentials = (
            "Credentials",
            {
                "fields": form_class.credential_field_names(),
                "description": "Stored encrypted and never shown again. Leave a field empty to keep its value.",
            },
        )
        if obj is None:
            return [(None, {"fields": ["organization", "name"]}), config, credentials]
        webhooks = ["webhook_url_display"] + (["tracking_webhook_url_display"] if obj.kind == "email" else [])
        return [
            (None, {"fields": ["kind_label", "organization", "name", "status"]}),
            (
                "Webhooks",
                {"fields": webhooks, "description": "Paste this URL into the platform's webhook settings."},
            ),
            config,
            credentials,
            ("Health", {"fields": self.health_fields}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [
            "kind_label",
            "organization",
            "status",
            "webhook_url_display",
            "tracking_webhook_url_display",
            *self.health_fields,
        ]

    def add_view(self, request, form_url="", extra_context=None):
        if request.GET.get("kind") not in KINDS:
            if not self.has_add_permission(request):
                raise PermissionDenied
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Add channel: choose its kind",
                "kinds": [(kind, spec.label) for kind, spec in KINDS.items()],
            }
            return TemplateResponse(request, "admin/providers/channel/choose_kind.html", context)
        extra_context = {**(extra_context or {}), "title": f"Add {KINDS[request.GET['kind']].label} channel"}
        return super().add_view(request, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if change:
            channel_update(
                channel=obj,
                name=form.cleaned_data["name"],
                config=form.config_values(),
                credentials=form.credential_values(),
            )
            return
        channel = channel_create(
            organization=form.cleaned_data["organization"],
            kind=form.spec.kind,
            name=form.cleaned_data["name"],
            config={k: v for k, v in form.config_values().items() if v is not None},
            credentials=form.credential_values(),
        )
        for field in Channel._meta.concrete_fields:
            setattr(obj, field.attname, getattr(channel, field.attname))
        obj._state = channel._state

    def delete_model(self, request, obj):
        channel_delete(channel=obj)

    def delete_queryset(self, request, queryset):
        for channel in queryset:
            channel_delete(channel=channel)

    @admin.action(description="Test connection", permissions=["change"])
    def test_connection(self, request, queryset):
        for channel in queryset:
            result = channel_test(channel=channel)
            level = messages.SUCCESS if result.ok else messages.ERROR
            self.message_user(
                request, f"{channel.name}: {'OK' if result.ok else 'failed'} — {result.detail}", level
            )

    @admin.action(description="Activate", permissions=["change"])
    def activate(self, request, queryset):
        self._set_status(request, queryset, Channel.Status.ACTIVE)

    @admin.action(description="Pause", permissions=["change"])
    def pause(self, request, queryset):
        self._set_status(request, queryset, Channel.Status.PAUSED)

    def _set_status(self, request, queryset, status: str) -> None:
        changed = 0
        for channel in queryset.exclude(status=status):
            try:
                channel_update(channel=channel, status=status)
            except ValidationError as exc:
                self.message_user(request, f"{channel.name}: {'; '.join(exc.messages)}", messages.ERROR)
                continue
            changed += 1
        self.message_user(request, f"{changed} channel(s) set to {status}.", messages.SUCCESS)


# --- webhook events -----------------------------------------------------------------------------------
@admin.register(WebhookEvent)
class WebhookEventAdmin(OrganizationScopedAdmin):
    read_only = True
    list_display = ["received_at", "channel", "event_id", "endpoint", "status", "short_error", "attempts"]
    list_filter = ["status", "endpoint", ("channel", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["event_id", "error"]
    date_hierarchy = "received_at"
    actions = ["replay"]
    fields = [
        "organization",
        "channel",
        "endpoint",
        "event_id",
        "status",
        "error",
        "attempts",
        "received_at",
        "processed_at",
        "processing_ms",
        "content_type",
        "headers_display",
        "body_display",
    ]
    readonly_fields = fields
    body_preview_chars = 20_000

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("channel", "organization")

    @admin.display(description="error")
    def short_error(self, obj) -> str:
        return (obj.error[:80] + "…") if len(obj.error) > 80 else obj.error

    @admin.display(description="body")
    def body_display(self, obj) -> str:
        text = bytes(obj.body or b"").decode("utf-8", "replace")
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            pass
        if len(text) > self.body_preview_chars:
            text = (
                text[: self.body_preview_chars]
                + f"\n… ({len(text) - self.body_preview_chars} more characters)"
            )
        return format_html('<pre style="white-space: pre-wrap; max-width: 60em">{}</pre>', text)

    @admin.display(description="headers")
    def headers_display(self, obj) -> str:
        # Some platforms send a shared secret in a header (Telegram's secret token): never show those.
        shown = {
            name: "••••" if any(part in name.lower() for part in SECRET_HEADER_PARTS) else value
            for name, value in (obj.headers or {}).items()
        }
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', json.dumps(shown, indent=2))

    def has_replay_permission(self, request) -> bool:
        ids = admin_org_ids(request)
        return ids is None or bool(ids)

    @admin.action(description="Replay (process again)", permissions=["replay"])
    def replay(self, request, queryset):
        try:
            from inbox.services.webhooks import webhook_event_replay
        except ImportError:
            self.message_user(request, "Replay is not available in this version.", messages.ERROR)
            return
        for event in queryset:
            webhook_event_replay(event=event)
        self.message_user(
            request, f"Queued {queryset.count()} event(s) for processing again.", messages.SUCCESS
        )
