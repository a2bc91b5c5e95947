"""The product changes proposed in docs/performance.md, applied in benchmark processes only, so their
effect can be measured before anyone edits the product: `BENCH_EXPERIMENT=proposed` (set by
`run.py --experiment proposed`) makes the workers and the message creators load this module.

Each patch mirrors one diff of docs/performance.md exactly in behaviour; nothing here is imported by
the product.
"""

from __future__ import annotations

import asyncio
import os
import threading


def _free_usage_without_lock() -> None:
    """billing.services: price first without the account lock; a free event never locks the account."""
    from django.db import IntegrityError, transaction

    from billing import services as b

    original_reserve, original_record = b.credit_reserve, b.usage_record

    def credit_reserve(*, organization_id, meter, quantity, idempotency_key, channel_kind="", country=""):
        account = b.credit_account_get_or_create(organization_id=organization_id)
        plan = b._plan_for(account)
        price = b.price_lookup(plan_id=plan.pk if plan else None, meter=meter, at=b.timezone.now(),
                               channel_kind=channel_kind, country=country)
        if b._cost(price, quantity)[1] <= 0:
            return b.ZERO
        return original_reserve(organization_id=organization_id, meter=meter, quantity=quantity,
                                idempotency_key=idempotency_key, channel_kind=channel_kind, country=country)

    def usage_record(*, organization_id, meter, quantity, idempotency_key, occurred_at, channel_id=None,
                     channel_kind="", country="", only_if_priced=False, force=False):
        kwargs = dict(organization_id=organization_id, meter=meter, quantity=quantity,
                      idempotency_key=idempotency_key, occurred_at=occurred_at, channel_id=channel_id,
                      channel_kind=channel_kind, country=country, only_if_priced=only_if_priced, force=force)
        if quantity <= 0 or b.UsageRecord.objects.filter(idempotency_key=idempotency_key).exists():
            return original_record(**kwargs)
        if b.CreditHold.objects.filter(idempotency_key=idempotency_key, closed_at__isnull=True).exists():
            return original_record(**kwargs)
        if b.Invoice.objects.filter(organization_id=organization_id, status=b.Invoice.Status.ISSUED,
                                    period_start__lte=occurred_at.date(), period_end__gte=occurred_at.date()).exists():
            return original_record(**kwargs)
        account = b.credit_account_get_or_create(organization_id=organization_id)
        plan = b._plan_for(account)
        price = b.price_lookup(plan_id=plan.pk if plan else None, meter=meter, at=occurred_at,
                               channel_kind=channel_kind, country=country)
        if price is None and only_if_priced:
            return False
        unit_price, cost = b._cost(price, quantity)
        if cost > 0:
            return original_record(**kwargs)
        try:
            with transaction.atomic():
                b.UsageRecord.objects.create(
                    organization_id=organization_id, meter=meter, quantity=quantity, idempotency_key=idempotency_key,
                    occurred_at=occurred_at, channel_id=channel_id, channel_kind=channel_kind,
                    country=(country or "").upper(), unit_price=unit_price, cost=cost, currency=account.currency,
                    price=price,
                )
        except IntegrityError:
            return False
        return True

    b.credit_reserve, b.usage_record = credit_reserve, usage_record
    import inbox.services.messages as m

    m.credit_reserve, m.usage_record = credit_reserve, usage_record
    for name in ("inbox.services.webhooks", "inbox.services.messages"):
        module = __import__(name, fromlist=["x"])
        if hasattr(module, "usage_record"):
            module.usage_record = usage_record


_loop = None
_loop_pid = None
_loop_lock = threading.Lock()


def _publish_on_a_long_lived_loop() -> None:
    """channels_app.publish: one event loop per process (in a daemon thread) instead of a new loop, and
    so a new Redis connection, per async_to_sync call."""
    from channels.layers import get_channel_layer

    import channels_app.publish as p
    import inbox.live as live

    original = p.publish

    def loop():
        global _loop, _loop_pid
        with _loop_lock:
            if _loop is None or _loop_pid != os.getpid():
                new = asyncio.new_event_loop()
                threading.Thread(target=new.run_forever, name="live-publish", daemon=True).start()
                _loop, _loop_pid = new, os.getpid()
        return _loop

    def publish(group, event):
        try:
            asyncio.get_running_loop()
            return original(group, event)
        except RuntimeError:
            pass
        try:
            layer = get_channel_layer()
            future = asyncio.run_coroutine_threadsafe(
                layer.group_send(group, {"type": "live.event", "event": event}), loop())
            future.result(timeout=5)
        except Exception:  # noqa: BLE001 - best effort, as the original
            p.logger.exception("live event %s to %s not delivered", event.get("type"), group)

    p.publish = publish
    live.publish = publish


_applied = False


def apply() -> None:
    global _applied
    if os.environ.get("BENCH_EXPERIMENT") != "proposed" or _applied:
        return
    _applied = True
    _free_usage_without_lock()
    _publish_on_a_long_lived_loop()
