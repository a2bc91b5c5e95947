"""Waking snoozed conversations when their time has come (run by the scheduler, inbox.tasks_ui)."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from inbox import live
from inbox.models import Conversation

from .messages import system_message_record

WAKE_BATCH = 500


def conversation_snooze_wake(*, now: datetime | None = None) -> int:
    """Reopen conversations whose snoozed_until has passed. Returns how many it reopened.

    Each one is locked and checked again, so a conversation an agent reopened, resolved or snoozed
    again meanwhile is left alone, and two schedulers never wake one twice. Emits, on commit, a
    private system message ("Snooze ended") and conversation.updated for each.
    """
    now = now or timezone.now()
    due = list(
        Conversation.objects.filter(status=Conversation.Status.SNOOZED, snoozed_until__lte=now)
        .order_by("snoozed_until")
        .values_list("pk", flat=True)[:WAKE_BATCH]
    )
    woken = 0
    for pk in due:
        with transaction.atomic():
            conversation = (
                Conversation.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, status=Conversation.Status.SNOOZED, snoozed_until__lte=now)
                .first()
            )
            if conversation is None:
                continue
            conversation.status = Conversation.Status.OPEN
            conversation.snoozed_until = None
            conversation.last_activity_at = max(conversation.last_activity_at, now)
            conversation.save(update_fields=["status", "snoozed_until", "last_activity_at", "updated_at"])
            system_message_record(conversation, "Snooze ended: the conversation is open again", at=now)
            conversation = (
                Conversation.objects.select_related("contact", "channel").prefetch_related("labels").get(pk=pk)
            )
            live.conversation_changed(conversation, created=False)
            woken += 1
    return woken
