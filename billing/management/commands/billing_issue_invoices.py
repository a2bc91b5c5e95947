from datetime import date

from django.core.management.base import BaseCommand, CommandError

from billing.services import invoice_build, invoice_issue, invoices_issue_for_month, previous_month
from organizations.models import Organization


def parse_month(value: str) -> date:
    try:
        return date.fromisoformat(f"{value}-01")
    except ValueError:
        raise CommandError(f"--month must be YYYY-MM, not {value!r}") from None


class Command(BaseCommand):
    help = "Build and issue the monthly invoices (default: last month, every organization with usage)."

    def add_arguments(self, parser):
        parser.add_argument("--month", help="YYYY-MM (default: last month)")
        parser.add_argument("--org", help="Only this organization (id or slug)")

    def handle(self, *args, month=None, org=None, **options):
        target = parse_month(month) if month else previous_month()
        if org:
            organization = Organization.objects.filter(slug=org).first() or (
                Organization.objects.filter(pk=int(org)).first() if org.isdigit() else None
            )
            if organization is None:
                raise CommandError(f"no organization {org!r}")
            invoices = [invoice_issue(invoice_id=invoice_build(organization_id=organization.pk, month=target).pk)]
        else:
            invoices = invoices_issue_for_month(month=target)
        for invoice in invoices:
            self.stdout.write(f"{invoice.number}\t{invoice.organization_id}\t{invoice.total} {invoice.currency}")
