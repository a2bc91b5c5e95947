"""Thin tasks: ids in, one service call, typed errors turned into retries."""

import logging
import random

from celery import shared_task

from inbox.errors import MessageNotYetKnown, RetryLater

logger = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=None, acks_late=True)
def webhook_event_process_task(self, event_id: int) -> str:
    from inbox.services.webhooks import webhook_event_process

    try:
        return webhook_event_process(event_id=event_id)
    except MessageNotYetKnown as exc:
        raise self.retry(countdown=min(30, 1 + self.request.retries * 2), exc=exc, max_retries=30) from exc


@shared_task(acks_late=True)
def webhook_events_process_task(event_ids: list[int]) -> dict:
    """A batch from the web process's dispatcher (inbox/webhooks/dispatch.py). Each event is processed
    on its own; one that must wait (a status for a message not yet known) or fails is queued alone, so
    it retries without holding the others. Redelivered after a worker crash: processed events skip."""
    from inbox.services.webhooks import webhook_event_process

    outcome: dict[str, int] = {}
    for event_id in event_ids:
        try:
            status = webhook_event_process(event_id=event_id)
        except MessageNotYetKnown:
            webhook_event_process_task.apply_async((event_id,), countdown=1)
            status = "retrying"
        except Exception:  # noqa: BLE001 - one event must not lose the rest of the batch
            logger.exception("webhook event %s: processing failed; queued alone", event_id)
            webhook_event_process_task.apply_async((event_id,), countdown=1)
            status = "retrying"
        outcome[status] = outcome.get(status, 0) + 1
    return outcome


@shared_task(bind=True, max_retries=None, acks_late=True)
def message_send_task(self, message_id: int) -> str:
    from inbox.services.messages import message_send

    try:
        return message_send(message_id=message_id).status
    except RetryLater as exc:
        raise self.retry(countdown=exc.countdown, exc=exc) from exc


@shared_task(acks_late=True)
def channel_sends_run_task(channel_id: int) -> dict:
    from inbox.services.sending import channel_sends_run

    return channel_sends_run(channel_id=channel_id)


@shared_task(bind=True, max_retries=6, acks_late=True)
def attachment_download_task(self, attachment_id: int) -> str:
    from inbox.services.attachments import attachment_download
    from providers.errors import TransientFailure

    try:
        return attachment_download(attachment_id=attachment_id)
    except TransientFailure as exc:
        raise self.retry(
            countdown=min(600, 2 ** (self.request.retries + 1)) * random.uniform(0.5, 1.5), exc=exc
        ) from exc


@shared_task
def message_sweep_task() -> dict:
    from inbox.services.messages import message_sweep

    return message_sweep()


@shared_task
def webhook_event_sweep_task() -> int:
    from inbox.services.webhooks import webhook_event_sweep

    return webhook_event_sweep()


@shared_task
def telegram_poll_all_task() -> int:
    from inbox.services.polling import polling_channel_ids

    ids = polling_channel_ids()
    for channel_id in ids:
        telegram_poll_task.delay(channel_id)
    return len(ids)


@shared_task(acks_late=True)
def telegram_poll_task(channel_id: int) -> int:
    from inbox.services.polling import telegram_poll

    return telegram_poll(channel_id=channel_id, timeout=0)


@shared_task
def email_poll_all_task() -> int:
    from inbox.services.email_polling import email_poll_channel_ids

    ids = email_poll_channel_ids()
    for channel_id in ids:
        email_poll_task.delay(channel_id)
    return len(ids)


@shared_task(acks_late=True)
def email_poll_task(channel_id: int) -> int:
    from inbox.services.email_polling import email_poll

    return email_poll(channel_id=channel_id)
