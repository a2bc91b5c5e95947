from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from organizations.models import Organization
from providers.models import Channel
from providers.sandbox import sandbox_channel_specs
from providers.services import channel_create


class Command(BaseCommand):
    help = "Create (or refresh) one sandbox channel of each kind, wired to the local fake platforms."

    def add_arguments(self, parser):
        parser.add_argument("--org", default="demo-company", help="organization slug (default: the demo's)")

    def handle(self, *args, **opts):
        organization = Organization.objects.filter(slug=opts["org"]).first()
        if organization is None:
            raise CommandError(f"no organization with slug {opts['org']!r} (run manage.py demo_setup first)")
        for spec in sandbox_channel_specs():
            existing = Channel.objects.filter(
                organization=organization, kind=spec["kind"], name=spec["name"]
            ).first()
            if existing is not None:
                # Ports may have changed since last run: keep the channel, refresh where it points.
                with transaction.atomic():
                    existing.config = {**existing.config, **spec["config"]}
                    existing.save(update_fields=["config", "updated_at"])
                continue
            channel_create(organization=organization, **spec)
            self.stdout.write(f"sandbox channel created: {spec['name']}")
