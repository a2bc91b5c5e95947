"""Channel lifecycle tasks: thin wrappers that take a channel id and run the platform hook.

A TransientFailure (platform down, rate limited) is retried with backoff; when retries run out the
channel is marked as failing so an admin sees it instead of a silently dead channel.
"""

from celery import shared_task

from .errors import RateLimited, TransientFailure
from .services import channel_error_record, channel_platform_activate, channel_platform_pause

MAX_RETRIES = 5


def _countdown(exc: TransientFailure, retries: int) -> float:
    if isinstance(exc, RateLimited) and exc.retry_after:
        return exc.retry_after
    return min(2**retries * 5, 300)


def _run(task, service, channel_id: int, label: str) -> None:
    try:
        service(channel_id=channel_id)
    except TransientFailure as exc:
        if task.request.retries >= MAX_RETRIES:
            channel_error_record(channel_id=channel_id, reason=f"{label} failed after retries: {exc}")
            return
        raise task.retry(exc=exc, countdown=_countdown(exc, task.request.retries)) from exc


@shared_task(bind=True, max_retries=MAX_RETRIES)
def channel_activate_task(self, channel_id: int) -> None:
    _run(self, channel_platform_activate, channel_id, "activation")


@shared_task(bind=True, max_retries=MAX_RETRIES)
def channel_pause_task(self, channel_id: int) -> None:
    _run(self, channel_platform_pause, channel_id, "pause")
