from datetime import datetime

from django.db import IntegrityError, transaction

from .models import UsageRecord


def usage_record(
    *,
    organization_id: int,
    meter: str,
    quantity: int,
    idempotency_key: str,
    occurred_at: datetime,
    channel_id: int | None = None,
    channel_kind: str = "",
) -> bool:
    """Record one billable event once. Returns False when the key was already recorded.

    Runs in the caller's transaction (a savepoint), so a rolled-back send records nothing.
    """
    try:
        with transaction.atomic():
            UsageRecord.objects.create(
                organization_id=organization_id,
                meter=meter,
                quantity=quantity,
                idempotency_key=idempotency_key,
                occurred_at=occurred_at,
                channel_id=channel_id,
                channel_kind=channel_kind,
            )
    except IntegrityError:
        return False
    return True
