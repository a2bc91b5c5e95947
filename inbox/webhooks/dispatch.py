"""Queue the processing of recorded webhook events from the web process, in batches.

Intake answers the platform as soon as the event row is committed; queueing its processing through
Celery (build the message, check out a producer, write to the broker) was measured at ~40 % of the
intake view's time (docs/performance.md). The view hands the event id to this per-process dispatcher
instead: a daemon thread wakes on the first id, lingers WEBHOOK_DISPATCH_LINGER_MS (default 10 ms) so
that the deliveries arriving meanwhile join it, and sends them as one `webhook_events_process_task`
(up to MAX_BATCH ids per message). A gunicorn sync worker serves one request at a time, so without the
linger nearly every batch held one id (measured: the thread's `delay()` was 31 % of the worker's
samples); the linger adds at most that much to a webhook's end-to-end latency.

Nothing is lost if the process dies with ids still in memory: their events are committed with status
`received`, and `webhook_event_sweep` (beat, every minute) queues every event still `received` after a
minute. A broker down at flush time is the same case.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from django.conf import settings

logger = logging.getLogger(__name__)

MAX_BATCH = 50


class Dispatcher:
    def __init__(self) -> None:
        self._reset()
        # A forked child (gunicorn, Celery prefork) starts clean: no inherited ids, lock or thread state.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._ids: list[int] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pid: int | None = None

    def add(self, event_id: int) -> None:
        from alexia.celery import app

        if not settings.WEBHOOK_DISPATCH_BATCHED or app.conf.task_always_eager:
            _send([event_id])
            return
        with self._lock:
            if self._pid != os.getpid():  # first use in this process: start its thread
                self._ids = []
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="webhook-dispatch", daemon=True).start()
            self._ids.append(event_id)
        self._wake.set()

    def _run(self) -> None:
        linger = settings.WEBHOOK_DISPATCH_LINGER_MS / 1000
        while True:
            self._wake.wait()
            if linger > 0:
                time.sleep(linger)
            with self._lock:
                self._wake.clear()
                ids, self._ids = self._ids, []
            for start in range(0, len(ids), MAX_BATCH):
                batch = ids[start : start + MAX_BATCH]
                try:
                    _send(batch)
                except Exception:  # noqa: BLE001 - the sweeper queues these events again
                    logger.exception("webhook events %s not queued; the sweeper will queue them", batch)


def _send(ids: list[int]) -> None:
    from inbox.tasks import webhook_event_process_task, webhook_events_process_task

    if len(ids) == 1:
        webhook_event_process_task.delay(ids[0])
    else:
        webhook_events_process_task.delay(ids)


dispatcher = Dispatcher()
