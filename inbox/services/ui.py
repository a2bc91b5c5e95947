"""Small writes of the agent inbox: read/unread marks, bulk actions, contact edits, presence.

Rules about conversations stay in conversation_update (one code path per rule): bulk actions call it
once per conversation, exactly as the API's PATCH does.
"""

import time

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction

from inbox import live
from inbox.models import Contact, Conversation
from organizations.models import Organization

from .conversations import UNSET, conversation_update

BULK_MAX = 200
PRESENCE_TTL = 30  # seconds a heartbeat counts; the page beats every 10
ATTRIBUTE_KEY_MAX = 60


def _counter_set(*, conversation: Conversation, unread_count: int) -> Conversation:
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if locked.unread_count == unread_count:
            return locked
        locked.unread_count = unread_count
        locked.save(update_fields=["unread_count", "updated_at"])
        conversation = Conversation.objects.select_related("contact", "channel").prefetch_related("labels").get(
            pk=locked.pk
        )
        live.conversation_changed(conversation, created=False)
    return conversation


def conversation_mark_read(*, conversation: Conversation) -> Conversation:
    """An agent has seen the conversation: unread_count 0. Emits conversation.updated when it changed."""
    return _counter_set(conversation=conversation, unread_count=0)


def conversation_mark_unread(*, conversation: Conversation) -> Conversation:
    """Flag the conversation for later: unread_count at least 1. Emits conversation.updated when it changed."""
    return _counter_set(conversation=conversation, unread_count=max(conversation.unread_count, 1))


BULK_ACTIONS = ("assign", "team", "resolve", "reopen", "priority", "label", "read", "unread")


def conversation_bulk_update(
    *, organization: Organization, conversation_ids: list[int], action: str, value: str = "", actor=None
) -> int:
    """Apply one action to many conversations of `organization`; ids of other organizations are
    ignored. Returns how many conversations it applied to.

    action: assign (value: user id or "" to unassign), team (team id or ""), resolve, reopen,
    priority (a priority), label (a label name, added to each conversation's labels), read, unread.
    Each conversation goes through conversation_update (or the read marks), so every rule, system
    message and live event is the same as for one conversation. Raises ValidationError.
    """
    if action not in BULK_ACTIONS:
        raise ValidationError({"action": [f"action must be one of {', '.join(BULK_ACTIONS)}."]})
    ids = list(dict.fromkeys(int(i) for i in conversation_ids))[:BULK_MAX]
    conversations = list(
        Conversation.objects.filter(organization=organization, pk__in=ids).prefetch_related("labels").order_by("id")
    )
    value = (value or "").strip()
    for conversation in conversations:
        if action == "read":
            conversation_mark_read(conversation=conversation)
        elif action == "unread":
            conversation_mark_unread(conversation=conversation)
        elif action == "assign":
            conversation_update(conversation=conversation, actor=actor, assignee_id=_optional_id(value, "assignee"))
        elif action == "team":
            conversation_update(conversation=conversation, actor=actor, team_id=_optional_id(value, "team"))
        elif action == "resolve":
            conversation_update(conversation=conversation, actor=actor, status=Conversation.Status.RESOLVED)
        elif action == "reopen":
            conversation_update(conversation=conversation, actor=actor, status=Conversation.Status.OPEN)
        elif action == "priority":
            conversation_update(conversation=conversation, actor=actor, priority=value)
        elif action == "label":
            names = sorted({label.name for label in conversation.labels.all()} | {value})
            conversation_update(conversation=conversation, actor=actor, labels=names)
    return len(conversations)


def _optional_id(value: str, field: str) -> int | None:
    if value == "":
        return None
    if not value.isdigit():
        raise ValidationError({field: ["Expected an id."]})
    return int(value)


def attributes_parse(text: str) -> dict[str, str]:
    """"key: value" (or "key=value") lines -> a dict. Raises ValidationError({"attributes": ...})."""
    attributes: dict[str, str] = {}
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        seps = [i for i in (line.find(":"), line.find("=")) if i > 0]
        if not seps:
            raise ValidationError({"attributes": [f"Line {number}: expected key: value."]})
        key, value = line[: min(seps)].strip(), line[min(seps) + 1 :].strip()
        if len(key) > ATTRIBUTE_KEY_MAX:
            raise ValidationError({"attributes": [f"Line {number}: keys are at most {ATTRIBUTE_KEY_MAX} characters."]})
        attributes[key] = value
    return attributes


def contact_update(
    *, contact: Contact, name: str | None = None, notes: str | None = None, attributes: dict | None = None
) -> Contact:
    """Change a contact's name, notes or attributes (None keeps a field). Emits conversation.updated
    for each of the contact's conversations when the name changed (the list shows it)."""
    errors = {}
    if name is not None and len(name.strip()) > Contact._meta.get_field("name").max_length:
        errors["name"] = ["At most 200 characters."]
    if attributes is not None and not isinstance(attributes, dict):
        errors["attributes"] = ["Expected key: value pairs."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        renamed = name is not None and name.strip() != contact.name
        if name is not None:
            contact.name = name.strip()
        if notes is not None:
            contact.notes = notes
        if attributes is not None:
            contact.attributes = attributes
        contact.save()
        if renamed:
            for conversation in (
                Conversation.objects.filter(contact=contact).select_related("contact", "channel").prefetch_related("labels")
            ):
                live.conversation_changed(conversation, created=False)
    return contact


# --- presence: who else has a conversation open ----------------------------------------------------------
# One cache key per (conversation, user), so concurrent heartbeats never overwrite each other. The
# cache must be shared by all web processes (configure CACHES with Redis in production).
def _presence_key(organization_id: int, conversation_id: int, user_id: int) -> str:
    return f"inbox:presence:{organization_id}:{conversation_id}:{user_id}"


def presence_beat(
    *, organization_id: int, conversation_id: int, user_id: int, candidate_user_ids: list[int], composing: bool = False
) -> dict[int, dict]:
    """Record that `user_id` views the conversation (and whether they are typing a reply); return the
    other members seen within PRESENCE_TTL seconds: {user_id: {"at": epoch, "composing": bool}}."""
    now = time.time()
    cache.set(
        _presence_key(organization_id, conversation_id, user_id), {"at": now, "composing": composing}, PRESENCE_TTL
    )
    keys = {
        _presence_key(organization_id, conversation_id, uid): uid for uid in candidate_user_ids if uid != user_id
    }
    found = cache.get_many(list(keys))
    return {keys[k]: v for k, v in found.items() if now - v.get("at", 0) <= PRESENCE_TTL}


def presence_leave(*, organization_id: int, conversation_id: int, user_id: int) -> None:
    cache.delete(_presence_key(organization_id, conversation_id, user_id))


__all__ = [
    "BULK_ACTIONS",
    "UNSET",
    "attributes_parse",
    "contact_update",
    "conversation_bulk_update",
    "conversation_mark_read",
    "conversation_mark_unread",
    "presence_beat",
    "presence_leave",
]
