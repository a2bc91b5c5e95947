"""`manage.py demo_setup [--url URL]`: the demo organization, its owner, labels and canned responses.

Idempotent: the password is generated and printed only when the owner is created; later runs say the
demo exists and how to reset the password. Missing labels and canned responses are added on every run.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from inbox.models import CannedResponse, Label
from organizations.models import Membership, Organization, Role
from organizations.services import membership_add, organization_create

DEMO_ORGANIZATION = "Demo Company"
DEMO_EMAIL = "demo@alexia.local"
DEMO_LABELS = [
    ("billing", "#2563eb"),
    ("bug", "#dc2626"),
    ("feedback", "#7c3aed"),
    ("sales", "#059669"),
    ("urgent", "#ea580c"),
    ("vip", "#ca8a04"),
]
DEMO_CANNED_RESPONSES = [
    ("hello", "Hi! Thanks for reaching out. How can I help you today?"),
    ("thanks", "Thank you for your message. Is there anything else I can help you with?"),
    ("hours", "Our support team is available Monday to Friday, 9:00 to 18:00 (CET)."),
    (
        "refund",
        "I'm sorry to hear that. I've started a refund; you'll get a confirmation e-mail within 2 business days.",
    ),
    ("followup", "I'm checking this with the team and will get back to you shortly."),
    ("bye", "Glad I could help. Have a great day!"),
]


def _box(lines: list[str]) -> str:
    width = max(len(line) for line in lines)
    border = "+" + "-" * (width + 2) + "+"
    return "\n".join([border, *(f"| {line.ljust(width)} |" for line in lines), border])


class Command(BaseCommand):
    help = "Create the demo organization and its owner (idempotent); prints the login once."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="", help="the URL to print (default: PUBLIC_BASE_URL)")

    def handle(self, *args, **opts):
        url = (opts["url"] or settings.PUBLIC_BASE_URL).rstrip("/") + "/"
        User = get_user_model()
        with transaction.atomic():
            owner = User.objects.filter(username=DEMO_EMAIL).first()
            org = (
                Organization.objects.filter(name=DEMO_ORGANIZATION, memberships__user=owner).first()
                if owner
                else None
            )
            password = None
            created = org is None
            if org is None and owner is None:
                try:
                    result = organization_create(name=DEMO_ORGANIZATION, owner_email=DEMO_EMAIL)
                except ValidationError as exc:
                    raise CommandError("; ".join(exc.messages)) from exc
                org, password = result["organization"], result["password"]
            elif org is None:
                # The user exists (an earlier, interrupted setup or made by hand): keep their password.
                org = Organization.objects.filter(name=DEMO_ORGANIZATION).first()
                if org is None:
                    org = organization_create(name=DEMO_ORGANIZATION, owner_email=DEMO_EMAIL)["organization"]
                else:
                    membership_add(organization=org, user=owner, role=Role.OWNER)
            elif not Membership.objects.filter(organization=org, user=owner, role=Role.OWNER).exists():
                membership_add(organization=org, user=owner, role=Role.OWNER)
            for name, color in DEMO_LABELS:
                Label.objects.get_or_create(organization=org, name=name, defaults={"color": color})
            for shortcut, text in DEMO_CANNED_RESPONSES:
                CannedResponse.objects.get_or_create(
                    organization=org, shortcut=shortcut, defaults={"text": text}
                )

        if password:
            self.stdout.write(
                _box(
                    [
                        "Alexia demo is ready. Sign in at:",
                        "",
                        f"  URL:      {url}",
                        f"  E-mail:   {DEMO_EMAIL}",
                        f"  Password: {password}",
                        "",
                        "The password is shown only this once.",
                        f"Admin (channels, API keys): {url}admin/",
                    ]
                )
            )
        else:
            lines = [
                f'The demo organization "{DEMO_ORGANIZATION}" {"now exists" if created else "already exists"}.',
                f"Sign in at {url} as {DEMO_EMAIL} with the password you set.",
                f"Forgot it? Run: python manage.py changepassword {DEMO_EMAIL}",
            ]
            self.stdout.write(_box(lines))
