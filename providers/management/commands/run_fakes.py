import signal
import threading

from django.core.management.base import BaseCommand

from providers.sandbox import start_fakes


class Command(BaseCommand):
    help = "Serve the local fake platforms (WhatsApp, Telegram, Twilio) used by the sandbox channels."

    def add_arguments(self, parser):
        parser.add_argument("--port-base", type=int, default=None)

    def handle(self, *args, **opts):
        fakes = start_fakes(opts["port_base"])
        for fake in fakes:
            self.stdout.write(f"fake {fake.name} platform on {fake.base_url}")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            for fake in fakes:
                fake.stop()
