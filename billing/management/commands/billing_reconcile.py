"""Compare the messages the platforms accepted with the usage ledger, for one organization and month.

Commands are the outer layer: this one may read inbox (lazily, here only) to gather the expected
side, and hands plain values (usage key -> quantity) to billing.services.usage_reconcile.
"""

from django.core.management.base import BaseCommand, CommandError

from billing.services import month_bounds, usage_reconcile
from organizations.models import Organization

from .billing_issue_invoices import parse_month


def accepted_messages(*, organization_id: int, month) -> dict[str, int]:
    """Usage key -> quantity of every outbound message a platform accepted in the month: it has the
    platform's id and a sent time (step 3 of the send ran), whatever its later status."""
    from inbox.models import Message

    start, end = month_bounds(month)
    rows = Message.objects.filter(
        organization_id=organization_id,
        direction=Message.Direction.OUT,
        private=False,
        sent_at__gte=start,
        sent_at__lt=end,
        platform_message_id__isnull=False,
    ).values_list("pk", "segments")
    return {f"msg:{pk}": segments or 1 for pk, segments in rows}


class Command(BaseCommand):
    help = "Report mismatches between accepted messages and metered usage. Exits 1 on any mismatch."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Organization id or slug")
        parser.add_argument("--month", required=True, help="YYYY-MM")

    def handle(self, *args, org, month, **options):
        target = parse_month(month)
        organization = Organization.objects.filter(slug=org).first() or (
            Organization.objects.filter(pk=int(org)).first() if org.isdigit() else None
        )
        if organization is None:
            raise CommandError(f"no organization {org!r}")
        expected = accepted_messages(organization_id=organization.pk, month=target)
        report = usage_reconcile(organization_id=organization.pk, month=target, expected=expected)
        self.stdout.write(
            f"{organization.name} {month}: {report.expected} accepted messages, {report.metered} metered, "
            f"{len(report.refunded)} refunded"
        )
        for key in report.missing:
            self.stdout.write(f"MISSING     {key}: accepted by the platform, not metered")
        for key in report.unexpected:
            self.stdout.write(f"UNEXPECTED  {key}: metered, no accepted message")
        for key, want, got in report.quantity_mismatch:
            self.stdout.write(f"QUANTITY    {key}: {want} expected, {got} metered")
        if not report.ok:
            raise CommandError(
                f"{len(report.missing) + len(report.unexpected) + len(report.quantity_mismatch)} mismatches"
            )
        self.stdout.write("OK: usage matches the accepted messages")
