"""A local fake of the Stripe API for tests, benchmarks and the demo (see providers/fakes/server.py).

Point settings.STRIPE_API_BASE at `fake.base_url`. The official `stripe` library talks to it over
HTTP exactly as to api.stripe.com:

    POST /v1/checkout/sessions          form-encoded, as the library sends it -> a checkout.session
    GET  /v1/checkout/sessions/{id}     -> the session

Every route checks `Authorization: Bearer <secret key>` and answers Stripe's 401 error otherwise.
`pay(session_id)` marks a session paid and returns the `checkout.session.completed` event Stripe
would send; `signed(event, secret)` gives the body and the Stripe-Signature header, made with the
library's own WebhookSignature helper.

Shapes: https://docs.stripe.com/api/checkout/sessions/object, https://docs.stripe.com/api/events/object
"""

import itertools
import json
import re
import secrets
import threading
import time
from typing import Any

import stripe

from providers.fakes.server import FakePlatform, FakeResponse, RecordedRequest

API_VERSION = "2025-09-30.clover"


def _unflatten(form: dict[str, list[str]]) -> dict[str, Any]:
    """Stripe's form encoding (a[b][0][c]=v) back into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, values in form.items():
        parts = re.findall(r"[^\[\]]+", key)
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append({})
                if last:
                    node[index] = values[-1]
                else:
                    if not isinstance(node[index], (dict, list)) or node[index] == {}:
                        node[index] = [] if parts[i + 1].isdigit() else {}
                    node = node[index]
            else:
                if last:
                    node[part] = values[-1]
                else:
                    node = node.setdefault(part, [] if parts[i + 1].isdigit() else {})
    return root


class FakeStripe(FakePlatform):
    name = "stripe"
    routes = [
        ("POST", r"/v1/checkout/sessions", "create_session"),
        ("GET", r"/v1/checkout/sessions/(?P<session_id>[^/]+)", "get_session"),
    ]

    def __init__(self, secret_key: str = "sk_test_alexia", host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self.secret_key = secret_key
        self.sessions: dict[str, dict] = {}
        self._ids = itertools.count(1)
        self._sessions_lock = threading.Lock()

    @staticmethod
    def error(message: str, status: int = 400, type_: str = "invalid_request_error", code: str = "") -> FakeResponse:
        body = {"error": {"type": type_, "message": message}}
        if code:
            body["error"]["code"] = code
        return FakeResponse(status, body)

    def _authorized(self, req: RecordedRequest) -> bool:
        return req.headers.get("Authorization", "") == f"Bearer {self.secret_key}"

    def create_session(self, req: RecordedRequest, match) -> FakeResponse:
        if not self._authorized(req):
            return self.error("Invalid API Key provided.", 401)
        params = _unflatten(req.form)
        if params.get("mode") != "payment" or not params.get("success_url"):
            return self.error("Missing required param: mode or success_url.", 400, code="parameter_missing")
        items = params.get("line_items") or []
        try:
            total = sum(int(i["price_data"]["unit_amount"]) * int(i.get("quantity", 1)) for i in items)
            currency = items[0]["price_data"]["currency"]
        except (KeyError, IndexError, ValueError, TypeError):
            return self.error("Invalid line_items.", 400, code="parameter_invalid")
        session_id = f"cs_test_{next(self._ids):04d}{secrets.token_hex(12)}"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": total,
            "amount_total": total,
            "currency": currency,
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata") or {},
            "mode": "payment",
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params["success_url"],
            "cancel_url": params.get("cancel_url"),
            "url": f"{self.base_url}/pay/{session_id}",
            "created": int(time.time()),
            "livemode": False,
        }
        with self._sessions_lock:
            self.sessions[session_id] = session
        return FakeResponse(200, session)

    def get_session(self, req: RecordedRequest, match) -> FakeResponse:
        if not self._authorized(req):
            return self.error("Invalid API Key provided.", 401)
        session = self.sessions.get(match["session_id"])
        if session is None:
            return self.error(f"No such checkout.session: '{match['session_id']}'", 404, code="resource_missing")
        return FakeResponse(200, session)

    # --- what Stripe sends back --------------------------------------------------------------------
    def pay(self, session_id: str, *, event_id: str | None = None, amount_total: int | None = None) -> dict:
        """Complete a session as a paid card payment would; returns the checkout.session.completed event."""
        with self._sessions_lock:
            session = self.sessions[session_id]
            session.update(payment_status="paid", status="complete")
            if amount_total is not None:
                session["amount_total"] = amount_total
            obj = dict(session)
        return self.event("checkout.session.completed", obj, event_id=event_id)

    @staticmethod
    def event(type_: str, obj: dict, *, event_id: str | None = None) -> dict:
        return {
            "id": event_id or f"evt_{secrets.token_hex(12)}",
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type_,
            "data": {"object": obj},
        }

    @staticmethod
    def signed(event: dict, secret: str, *, timestamp: int | None = None) -> tuple[bytes, str]:
        """The body and Stripe-Signature header Stripe would send for `event`."""
        payload = json.dumps(event)
        header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)
        return payload.encode(), header
