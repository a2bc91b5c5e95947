"""Scheduled tasks of the agent inbox. Beat entry (settings.CELERY_BEAT_SCHEDULE):
    "conversation-snooze-wake": {"task": "inbox.tasks_ui.conversation_snooze_wake_task", "schedule": 30.0}
"""

from celery import shared_task


@shared_task(acks_late=True)
def conversation_snooze_wake_task() -> int:
    from inbox.services.snooze import conversation_snooze_wake

    return conversation_snooze_wake()
