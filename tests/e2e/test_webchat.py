"""The website chat widget end to end, in headless Debian Chromium against a real daphne server
(alexia.asgi: HTTP and websockets) and a real Celery worker, on the test database and Redis.

The visitor writes in the widget on the demo page; the message goes through the intake and the worker
and arrives live on the agent's /ws/inbox/ socket (the agent inbox's live feed); the agent's typing and
reply (REST API, sent by the worker) arrive live in the widget; the widget's read receipt moves the
message to "read"; the conversation survives a reload. A customer's site on another origin works
cross-origin, and a site that is not allowed gets no widget.

Self-contained fixtures (server, worker, browser), so the module runs with or without other e2e modules.
"""

import json
import os
import socket
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from django.test import Client
from playwright.sync_api import expect
from websockets.sync.client import connect as ws_connect

from inbox.models import Conversation, Message
from organizations.models import Role
from organizations.services import api_key_create
from tests.factories import ChannelFactory, MembershipFactory, OrganizationFactory, UserFactory
from tests.pipeline.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Playwright's sync API runs an event loop in the main thread; the ORM calls here are plain sync code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def wc_env(e2e_env):
    """The e2e session's environment (tests/e2e/conftest.py): one server, one worker pool, one channel
    layer prefix for every browser test, so no worker ever publishes where the sockets are not."""
    return e2e_env


@pytest.fixture(scope="module")
def wc_server(server):
    return server


@pytest.fixture(scope="module")
def wc_worker(worker):
    return worker


@pytest.fixture(scope="module")
def wc_browser(browser):
    """pytest-playwright's browser (Debian Chromium, see tests/e2e/conftest.py): one Playwright per
    process, since a second sync_playwright() cannot start inside its running event loop."""
    return browser


@pytest.fixture(scope="module")
def customer_site(tmp_path_factory):
    """Serves pages of a customer's website from another origin (http://localhost:<port>)."""
    root = tmp_path_factory.mktemp("customer-site")
    port = _free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(SimpleHTTPRequestHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"root": root, "origin": f"http://localhost:{port}"}
    server.shutdown()


@pytest.fixture
def setup(transactional_db, wc_server):
    org = OrganizationFactory(name="Acme")
    agent = UserFactory(username="wc-e2e-agent@acme.test", first_name="Bruna")
    MembershipFactory(user=agent, organization=org, role=Role.AGENT)
    channel = ChannelFactory(organization=org, kind="webchat", name="Acme chat")
    _, api_key = api_key_create(organization=org, name="e2e")
    client = Client()
    client.force_login(agent)
    return {
        "org": org,
        "agent": agent,
        "channel": channel,
        "api_key": api_key,
        "session": client.cookies["sessionid"].value,
    }


class InboxFeed:
    """The agent inbox's live feed: a /ws/inbox/ socket with the agent's session, read in a thread."""

    def __init__(self, server: str, session: str) -> None:
        self.events: list[dict] = []
        self.ws = None
        self.url = server.replace("http", "ws") + "/ws/inbox/"
        self.origin = server
        self.session = session
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        headers = {"Cookie": f"sessionid={self.session}"}
        try:
            with ws_connect(self.url, origin=self.origin, additional_headers=headers) as ws:
                self.ws = ws
                for frame in ws:
                    self.events.append(json.loads(frame))
        except Exception as exc:  # noqa: BLE001 - reported by wait_for's timeout message
            self.events.append({"type": "socket.error", "error": repr(exc)})

    def wait_for(self, predicate, what: str) -> dict:
        return wait_until(lambda: next((e for e in self.events if predicate(e)), None), what=what)

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()


def _agent_post(server: str, session: str, path: str, data: dict) -> requests.Response:
    csrf = "w" * 32
    return requests.post(
        server + path,
        data=data,
        cookies={"sessionid": session, "csrftoken": csrf},
        headers={"X-CSRFToken": csrf},
        timeout=10,
    )


def test_visitor_and_agent_talk_live(wc_server, wc_worker, wc_browser, setup):
    channel = setup["channel"]
    page = wc_browser.new_page()
    page.goto(f"{wc_server}/webchat/demo/{channel.webhook_token}/")
    bubble = page.locator("#alexia-chat .bubble")
    expect(bubble).to_be_visible(timeout=10_000)
    bubble.click()
    panel = page.locator("#alexia-chat .panel")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("Acme chat")
    expect(panel.locator(".note").first).to_contain_text("We are away right now")  # no agent online
    expect(panel).to_have_attribute("data-live", "1", timeout=10_000)  # the widget's websocket is up
    feed = InboxFeed(wc_server, setup["session"])
    assert (
        feed.wait_for(lambda e: e["type"] == "hello", "the inbox socket")["data"]["organization"]
        == setup["org"].pk
    )

    # The agent's inbox page is open in another browser before the visitor writes.
    agent_context = wc_browser.new_context()
    agent_context.add_cookies([{"name": "sessionid", "value": setup["session"], "url": wc_server}])
    inbox = agent_context.new_page()
    inbox.goto(f"{wc_server}/")
    inbox.wait_for_selector('#live-dot[data-state="live"]')

    page.locator("#alexia-chat textarea").fill("Hello, do you ship to Portugal?")
    page.locator("#alexia-chat textarea").press("Enter")
    expect(panel.locator(".msg.in", has_text="Hello, do you ship to Portugal?")).to_be_visible()
    # It appears in the agent's conversation list without a reload.
    expect(inbox.locator("#conversation-list")).to_contain_text("Hello, do you ship to Portugal?", timeout=20_000)

    created = feed.wait_for(
        lambda e: e["type"] == "message.created" and e["data"]["text"] == "Hello, do you ship to Portugal?",
        "the visitor's message live in the agent inbox",
    )
    assert created["data"]["direction"] == "in"
    conversation = Conversation.objects.get(pk=created["data"]["conversation"])
    assert conversation.channel_id == channel.pk
    assert conversation.contact.identities.get().kind == "webchat"
    expect(panel.locator(".msg.in.pending")).to_have_count(0)  # the intake accepted it

    # The visitor types: the agent's feed shows it.
    page.locator("#alexia-chat textarea").press_sequentially("One more thing", delay=20)
    typing = feed.wait_for(
        lambda e: e["type"] == "conversation.typing" and e["data"]["typing"],
        "the visitor typing in the inbox",
    )
    assert typing["data"] == {
        "conversation": conversation.pk,
        "channel": channel.pk,
        "contact": conversation.contact_id,
        "typing": True,
        "by": "contact",
    }
    page.locator("#alexia-chat textarea").fill("")

    # The agent types: the widget shows it.
    response = _agent_post(
        wc_server,
        setup["session"],
        f"/webchat/agent/conversations/{conversation.pk}/typing/",
        {"typing": "1"},
    )
    assert response.json() == {"delivered": True}, response.text
    expect(panel.locator(".typing")).to_have_text("Bruna is typing…")

    # The agent replies through the REST API; the worker sends it; it appears live in the widget.
    response = requests.post(
        f"{wc_server}/api/v1/conversations/{conversation.pk}/messages/",
        json={"text": "Yes! Delivery to Portugal takes 3 days."},
        headers={"Authorization": f"Bearer {setup['api_key']}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    reply_id = response.json()["id"]
    expect(panel.locator(".msg.out", has_text="Delivery to Portugal takes 3 days.")).to_be_visible(
        timeout=20_000
    )
    expect(panel.locator(".typing")).to_be_hidden()

    # The open, visible widget acknowledged it as read: the ticks move in the inbox.
    wait_until(lambda: Message.objects.get(pk=reply_id).status == "read", what="the read receipt")
    feed.wait_for(
        lambda e: (
            e["type"] == "message.updated" and e["data"]["id"] == reply_id and e["data"]["status"] == "read"
        ),
        "the read status live in the inbox",
    )

    # A reload keeps the conversation (visitor token in localStorage, history from the server).
    page.reload()
    page.locator("#alexia-chat .bubble").click()
    expect(panel.locator(".msg.in", has_text="Hello, do you ship to Portugal?")).to_be_visible(timeout=10_000)
    expect(panel.locator(".msg.out", has_text="Delivery to Portugal takes 3 days.")).to_be_visible()
    assert Conversation.objects.filter(channel=channel).count() == 1
    assert Message.objects.filter(conversation=conversation, direction="in").count() == 1
    page.close()
    feed.close()


def _customer_page(site: dict, name: str, server: str, token: str) -> str:
    (site["root"] / name).write_text(
        "<!doctype html><html><body><h1>Customer shop</h1>"
        f'<script src="{server}/static/widget.js" data-channel="{token}" async></script></body></html>'
    )
    return f"{site['origin']}/{name}"


def test_the_widget_works_cross_origin_only_on_allowed_sites(
    wc_server, wc_worker, wc_browser, setup, customer_site
):
    channel = setup["channel"]
    refused_page = wc_browser.new_page()
    refused_page.goto(_customer_page(customer_site, "refused.html", wc_server, channel.webhook_token))
    refused_page.wait_for_load_state("networkidle")
    assert refused_page.locator("#alexia-chat").count() == 0  # config answered 403: no widget at all

    channel.config = {**channel.config, "allowed_origins": [customer_site["origin"]]}
    channel.save()
    page = wc_browser.new_page()
    page.goto(_customer_page(customer_site, "shop.html", wc_server, channel.webhook_token))
    page.locator("#alexia-chat .bubble").click()
    panel = page.locator("#alexia-chat .panel")
    expect(panel).to_have_attribute("data-live", "1", timeout=10_000)
    page.locator("#alexia-chat textarea").fill("Written on the customer's site")
    page.locator("#alexia-chat textarea").press("Enter")
    message = wait_until(
        lambda: Message.objects.filter(channel=channel, text="Written on the customer's site").first(),
        what="the cross-origin message stored",
    )
    assert message.content["page_url"] == f"{customer_site['origin']}/shop.html"
    page.close()
    refused_page.close()
