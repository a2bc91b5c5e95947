import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from organizations.services import organization_create


class Command(BaseCommand):
    help = "Create an organization and its owner; prints one JSON line."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--owner", required=True, help="owner's e-mail (also the login)")
        parser.add_argument("--password", help="owner's password (generated and printed when absent)")
        parser.add_argument("--api-key", action="store_true", help="also create an API key and print it")

    def handle(self, *args, **opts):
        try:
            result = organization_create(
                name=opts["name"],
                owner_email=opts["owner"],
                owner_password=opts["password"],
                with_api_key=opts["api_key"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        out = {"organization_id": result["organization"].pk, "owner": result["owner"].email}
        if result["password"]:
            out["password"] = result["password"]
        if result["api_key"]:
            out["api_key"] = result["api_key"]
        self.stdout.write(json.dumps(out))
