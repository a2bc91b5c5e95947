"""Conversation writes: status, assignment, team, labels, priority, snooze; and starting a
conversation with a recipient by sending it a first message."""

from datetime import datetime

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from inbox import live
from inbox.models import Contact, ContactIdentity, Conversation, Label, Message
from organizations.models import Membership, Team
from providers.models import Channel

from .messages import IDENTITY_KIND_FOR_CHANNEL, message_create_outbound, system_message_record


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


# "Leave this field as it is", as distinct from None ("clear it").
UNSET = _Unset()

LABEL_MAX = Label._meta.get_field("name").max_length


def _display(user) -> str:
    if user is None or not getattr(user, "is_authenticated", False):
        return "the API"
    return user.get_full_name() or user.get_username()


def _labels_get_or_create(*, organization_id: int, names: list[str]) -> list[Label]:
    labels = []
    for name in names:
        try:
            with transaction.atomic():
                label, _ = Label.objects.get_or_create(organization_id=organization_id, name=name)
        except IntegrityError:
            # Created by a concurrent request between our SELECT and INSERT.
            label = Label.objects.get(organization_id=organization_id, name=name)
        labels.append(label)
    return labels


def _clean_labels(labels) -> list[str]:
    if not isinstance(labels, list | tuple):
        raise ValidationError({"labels": ["labels must be a list of names."]})
    names: list[str] = []
    for raw in labels:
        name = raw.strip() if isinstance(raw, str) else ""
        if not name:
            raise ValidationError({"labels": ["A label name cannot be empty."]})
        if len(name) > LABEL_MAX:
            raise ValidationError({"labels": [f"Label names are at most {LABEL_MAX} characters."]})
        if name not in names:
            names.append(name)
    return names


def conversation_update(
    *,
    conversation: Conversation,
    actor=None,
    status: str | _Unset = UNSET,
    assignee_id: int | None | _Unset = UNSET,
    team_id: int | None | _Unset = UNSET,
    labels: list[str] | _Unset = UNSET,
    priority: str | _Unset = UNSET,
    snoozed_until: datetime | None | _Unset = UNSET,
) -> Conversation:
    """Change a conversation; an argument left UNSET keeps its value, None clears it.

    Rules: the assignee must be a member of the conversation's organization and the team one of its
    teams; labels are names, created in the organization when new, and replace the current set;
    status "snoozed" needs a snoozed_until in the future (given now or already stored), and any other
    status clears it; resolving stamps resolved_at, reopening clears it. Raises ValidationError with
    field errors. `actor` (a user, or None for an API key) is named in the system messages.

    Emits, on commit: a private "system" message for each assignment, resolve, reopen and snooze,
    and conversation.updated.
    """
    errors: dict[str, list[str]] = {}
    organization_id = conversation.organization_id
    if status is not UNSET and status not in Conversation.Status.values:
        errors["status"] = [f"status must be one of {', '.join(Conversation.Status.values)}."]
    if priority is not UNSET and priority not in Conversation.Priority.values:
        errors["priority"] = [f"priority must be one of {', '.join(Conversation.Priority.values)}."]
    assignee = None
    if assignee_id not in (UNSET, None):
        membership = (
            Membership.objects.select_related("user")
            .filter(organization_id=organization_id, user_id=assignee_id, user__is_active=True)
            .first()
        )
        if membership is None:
            errors["assignee"] = ["The assignee must be a member of this organization."]
        else:
            assignee = membership.user
    if team_id not in (UNSET, None) and not Team.objects.filter(organization_id=organization_id, pk=team_id).exists():
        errors["team"] = ["No such team in this organization."]
    label_names: list[str] | None = None
    if labels is not UNSET:
        try:
            label_names = _clean_labels(labels)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)

    now = timezone.now()
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        old_status, old_assignee_id = conversation.status, conversation.assignee_id
        new_status = old_status if status is UNSET else status
        new_snooze = conversation.snoozed_until if snoozed_until is UNSET else snoozed_until
        if new_status == Conversation.Status.SNOOZED:
            if new_snooze is None:
                raise ValidationError({"snoozed_until": ["Required when the status is snoozed."]})
            if snoozed_until is not UNSET and new_snooze <= now:
                raise ValidationError({"snoozed_until": ["Must be in the future."]})
        elif snoozed_until not in (UNSET, None):
            raise ValidationError({"snoozed_until": ["Only a snoozed conversation has snoozed_until."]})
        else:
            new_snooze = None

        conversation.status = new_status
        conversation.snoozed_until = new_snooze
        if new_status == Conversation.Status.RESOLVED and old_status != Conversation.Status.RESOLVED:
            conversation.resolved_at = now
        elif new_status != Conversation.Status.RESOLVED:
            conversation.resolved_at = None
        if assignee_id is not UNSET:
            conversation.assignee = assignee
        if team_id is not UNSET:
            conversation.team_id = team_id
        if priority is not UNSET:
            conversation.priority = priority
        conversation.save()
        if label_names is not None:
            conversation.labels.set(_labels_get_or_create(organization_id=organization_id, names=label_names))

        who = _display(actor)
        if assignee_id is not UNSET and conversation.assignee_id != old_assignee_id:
            if assignee is None:
                system_message_record(conversation, f"Unassigned by {who}", at=now)
            else:
                system_message_record(conversation, f"Assigned to {_display(assignee)} by {who}", at=now)
        if new_status != old_status:
            if new_status == Conversation.Status.RESOLVED:
                system_message_record(conversation, f"Resolved by {who}", at=now)
            elif new_status == Conversation.Status.SNOOZED:
                system_message_record(conversation, f"Snoozed until {new_snooze.isoformat()} by {who}", at=now)
            elif old_status in (Conversation.Status.RESOLVED, Conversation.Status.SNOOZED):
                system_message_record(conversation, f"Reopened by {who}", at=now)
        elif new_status == Conversation.Status.SNOOZED and snoozed_until is not UNSET:
            system_message_record(conversation, f"Snoozed until {new_snooze.isoformat()} by {who}", at=now)
        live.conversation_changed(conversation, created=False)
    return conversation


# --- starting a conversation with a recipient ------------------------------------------------------------
PHONE_KINDS = ("whatsapp_cloud", "twilio_sms", "twilio_whatsapp")


def recipient_normalize(*, channel_kind: str, value: str) -> str:
    """The identity value a channel kind reaches `value` by: E.164 for phone channels (a Twilio
    `whatsapp:` prefix is accepted), a lower-cased address for e-mail, the id as a string elsewhere.
    Raises ValidationError({"to": [...]})."""
    value = (value or "").strip()
    if not value:
        raise ValidationError({"to": ["A recipient is required."]})
    if channel_kind in PHONE_KINDS:
        if value.lower().startswith("whatsapp:"):
            value = value[len("whatsapp:") :]
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException as exc:
            raise ValidationError(
                {"to": ["Expected a phone number in international format, e.g. +14155550123."]}
            ) from exc
        if not phonenumbers.is_valid_number(number):
            raise ValidationError({"to": ["This is not a valid phone number."]})
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if channel_kind == "email":
        try:
            validate_email(value)
        except ValidationError as exc:
            raise ValidationError({"to": ["Expected an e-mail address."]}) from exc
        return value.lower()
    if channel_kind == "telegram":
        if not value.lstrip("-").isdigit():
            raise ValidationError({"to": ["Expected a Telegram chat id (digits)."]})
        return str(int(value))
    if channel_kind in ("messenger", "instagram"):
        if not value.isdigit():
            raise ValidationError({"to": ["Expected the platform's numeric user id for this page."]})
        return value
    if len(value) > ContactIdentity._meta.get_field("value").max_length:
        raise ValidationError({"to": ["The recipient id is too long."]})
    return value


def conversation_start(
    *,
    channel: Channel,
    to: str,
    text: str = "",
    template: dict | None = None,
    attachments: list[dict] | None = None,
    sender=None,
    idempotency_key: str | None = None,
) -> tuple[Message, bool]:
    """Send a message to `to` on `channel`, finding or creating the contact, its identity and the
    conversation (thread_key ""). Returns (message, created) as message_create_outbound does.

    A repeated idempotency_key returns the first message and creates nothing. The refusals of
    message_create_outbound apply (opted out, blocked, closed service window: a new WhatsApp
    conversation has no inbound message, so only a template opens it); on a refusal nothing is kept,
    not even a new contact. Emits conversation.created for a new conversation, then what
    message_create_outbound emits, on commit. Raises ValidationError({"to": ...}) for a bad recipient.
    """
    value = recipient_normalize(channel_kind=channel.kind, value=to)
    if idempotency_key:
        existing = Message.objects.filter(organization_id=channel.organization_id, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing, False
    kind = IDENTITY_KIND_FOR_CHANNEL[channel.kind]
    with transaction.atomic():
        identity = (
            ContactIdentity.objects.select_related("contact")
            .filter(organization_id=channel.organization_id, kind=kind, value=value)
            .first()
        )
        if identity is None:
            try:
                with transaction.atomic():
                    contact = Contact.objects.create(organization_id=channel.organization_id)
                    identity = ContactIdentity.objects.create(
                        organization_id=channel.organization_id, contact=contact, kind=kind, value=value, channel=channel
                    )
            except IntegrityError:
                identity = ContactIdentity.objects.select_related("contact").get(
                    organization_id=channel.organization_id, kind=kind, value=value
                )
        try:
            with transaction.atomic():
                conversation, created = Conversation.objects.get_or_create(
                    channel=channel,
                    contact_id=identity.contact_id,
                    thread_key="",
                    defaults={"organization_id": channel.organization_id, "last_activity_at": timezone.now()},
                )
        except IntegrityError:
            conversation = Conversation.objects.get(channel=channel, contact_id=identity.contact_id, thread_key="")
            created = False
        if created:
            live.conversation_changed(conversation, created=True)
        return message_create_outbound(
            conversation=conversation,
            text=text,
            template=template,
            attachments=attachments,
            sender=sender,
            idempotency_key=idempotency_key,
        )


__all__ = [
    "UNSET",
    "conversation_start",
    "conversation_update",
    "recipient_normalize",
]

