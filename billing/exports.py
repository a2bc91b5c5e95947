"""CSV exports of usage and invoices (spreadsheet-friendly: one header row, decimal strings)."""

import csv
from collections.abc import Iterable

from django.http import HttpResponse

from .models import Invoice, UsageRecord

USAGE_COLUMNS = [
    "occurred_at", "meter", "channel_kind", "channel_id", "country", "quantity", "unit_price", "cost",
    "currency", "idempotency_key", "reverses",
]
INVOICE_COLUMNS = ["invoice", "period_start", "period_end", "meter", "channel_kind", "quantity", "unit_price", "amount", "currency"]


def _response(filename: str) -> tuple[HttpResponse, "csv._writer"]:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response, csv.writer(response)


def usage_csv(rows: Iterable[UsageRecord], *, filename: str) -> HttpResponse:
    response, writer = _response(filename)
    writer.writerow(USAGE_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                row.occurred_at.isoformat(), row.meter, row.channel_kind, row.channel_id or "", row.country,
                row.quantity, row.unit_price, row.cost, row.currency, row.idempotency_key,
                row.reverses.idempotency_key if row.reverses_id else "",
            ]
        )
    return response


def invoice_csv(invoice: Invoice) -> HttpResponse:
    response, writer = _response(f"{invoice.number}.csv")
    writer.writerow(INVOICE_COLUMNS)
    for line in invoice.lines.all():
        writer.writerow(
            [
                invoice.number, invoice.period_start.isoformat(), invoice.period_end.isoformat(), line.meter,
                line.channel_kind, line.quantity, line.unit_price, line.amount, invoice.currency,
            ]
        )
    writer.writerow([invoice.number, "", "", "total", "", "", "", invoice.total, invoice.currency])
    return response
