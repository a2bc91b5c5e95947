from django.core.management.base import BaseCommand, CommandError

from inbox.services.webhooks import webhook_event_process, webhook_event_replay
from providers.models import WebhookEvent


class Command(BaseCommand):
    help = "Replay stored webhook events (by id, or every failed one); processing is idempotent."

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, help="webhook event ids")
        parser.add_argument("--failed", action="store_true", help="every event whose processing failed")
        parser.add_argument("--org", type=int, help="only this organization's events (with --failed)")
        parser.add_argument("--channel", type=int, help="only this channel's events (with --failed)")
        parser.add_argument(
            "--now", action="store_true", help="process here instead of queueing for a worker"
        )

    def handle(self, *args, **opts):
        if not opts["ids"] and not opts["failed"]:
            raise CommandError("give event ids or --failed")
        events = WebhookEvent.objects.all()
        if opts["ids"]:
            events = events.filter(pk__in=opts["ids"])
            missing = set(opts["ids"]) - set(events.values_list("pk", flat=True))
            if missing:
                raise CommandError(f"no webhook event with id {', '.join(map(str, sorted(missing)))}")
        if opts["failed"]:
            events = events.filter(status=WebhookEvent.Status.FAILED)
        if opts["org"]:
            events = events.filter(organization_id=opts["org"])
        if opts["channel"]:
            events = events.filter(channel_id=opts["channel"])
        count = 0
        for event in events.order_by("pk").iterator():
            if opts["now"]:
                WebhookEvent.objects.filter(pk=event.pk).update(status=WebhookEvent.Status.RECEIVED, error="")
                status = webhook_event_process(event_id=event.pk)
                self.stdout.write(f"event {event.pk}: {status}")
            else:
                webhook_event_replay(event=event)
                self.stdout.write(f"event {event.pk}: queued")
            count += 1
        self.stdout.write(f"{count} event(s) replayed")
