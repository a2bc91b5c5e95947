"""Thin billing tasks for beat: ids and dates in, one service call."""

from datetime import date

from celery import shared_task

from . import services


@shared_task(acks_late=True)
def invoices_issue_monthly_task(month: str | None = None) -> list[str]:
    """Issue last month's invoices (or `month`, "YYYY-MM"). Idempotent: safe to run every day."""
    target = date.fromisoformat(f"{month}-01") if month else services.previous_month()
    return [invoice.number for invoice in services.invoices_issue_for_month(month=target)]


@shared_task(acks_late=True)
def credit_hold_sweep_task() -> int:
    """Release credit holds of sends that never finished."""
    return services.credit_hold_sweep()
