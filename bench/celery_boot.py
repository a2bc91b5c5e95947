"""The product's Celery app, plus a readiness file so the benchmark knows when a worker consumes
(the worker runs at WARNING level, where Celery prints no "ready." line and no per-task lines)."""

import os
from pathlib import Path

from celery.signals import worker_ready

from alexia.celery import app

__all__ = ["app"]


@worker_ready.connect
def _ready(**kwargs) -> None:
    path = os.environ.get("BENCH_READY_FILE")
    if path:
        Path(path).write_text(str(os.getpid()))
