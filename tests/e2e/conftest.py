"""Browser tests: headless Debian Chromium driving a real daphne server (HTTP + websockets) and a real
Celery worker, both on the test database and Redis, with the FakeWhatsApp platform.

Run in their own pytest process (`-m e2e`): pytest-playwright runs an event loop in the main thread.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests
from django.conf import settings
from django.db import connection

from providers.whatsapp_cloud import sign
from tests.pipeline.conftest import WorkerProcess

# The ORM is used from tests whose main thread runs Playwright's event loop (STACK-NOTES.md).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parents[2]
APP_SECRET = "test-app-secret"  # tests/factories.py DEFAULT_CONFIG
PHONE_NUMBER_ID = "106540352242922"
PASSWORD = "correct-horse-battery"  # tests/factories.py UserFactory


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": [
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run",
        ],
    }


@pytest.fixture(scope="session")
def e2e_env(django_db_setup, django_db_blocker, tmp_path_factory):
    """Environment for the server and worker processes: the test database (created by pytest-django
    for this session), Redis, and a media folder of their own."""
    with django_db_blocker.unblock():
        db = connection.settings_dict
    url = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        DATABASE_URL=url,
        REDIS_URL=settings.REDIS_URL,
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        MEDIA_ROOT=str(tmp_path_factory.mktemp("media")),
        PROVIDER_HTTP_TIMEOUT="3",
        CHANNELS_PREFIX=f"e2e{os.getpid()}",
        BILLING_PLAN_CACHE_SECONDS="0",
        DJANGO_SETTINGS_MODULE="alexia.settings",
    )
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return {"env": env, "port": port, "media_root": env["MEDIA_ROOT"]}


@pytest.fixture(scope="session")
def server(e2e_env, tmp_path_factory):
    """daphne serving alexia.asgi (HTTP and /ws/inbox/) on a free port. Yields its base URL."""
    log_path = tmp_path_factory.mktemp("daphne") / "daphne.log"
    log = open(log_path, "ab")  # noqa: SIM115 - closed with the process
    port = e2e_env["port"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "alexia.asgi:application"],
        cwd=ROOT, env=e2e_env["env"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{base}/login/", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"daphne did not start: {log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    yield base
    os.killpg(proc.pid, 15)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
    log.close()


@pytest.fixture(scope="session")
def worker(e2e_env, tmp_path_factory):
    env = dict(e2e_env["env"])
    proc = WorkerProcess(env, tmp_path_factory.mktemp("worker") / "worker.log").start()
    yield proc
    proc.stop()


@pytest.fixture(autouse=True)
def _server_media(settings, e2e_env):
    # Files the test process stores (seeded attachments) must be where the server reads them.
    settings.MEDIA_ROOT = e2e_env["media_root"]


def post_webhook(server: str, channel, payload: dict) -> None:
    body = json.dumps(payload).encode()
    response = requests.post(
        f"{server}/webhooks/whatsapp_cloud/{channel.webhook_token}/",
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, APP_SECRET)},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def login(page, server: str, username: str) -> None:
    page.goto(f"{server}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/")
    page.wait_for_selector('#live-dot[data-state="live"]')
