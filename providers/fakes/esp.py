"""A local fake of three ESPs' send APIs, answering with their real response shapes.

Point an anymail backend at it with the channel's `api_base_url` (anymail's api_url):
    Mailgun   POST /mailgun/v3/<domain>/messages   Basic api:<key>; 200 {"id": "<Message-Id>", "message": "Queued. Thank you."}
              GET  /mailgun/v3/domains/<domain>
    SendGrid  POST /sendgrid/v3/mail/send          Bearer <key>; 202, empty body (anymail generates the id)
              GET  /sendgrid/v3/scopes
    Postmark  POST /postmark/email                 X-Postmark-Server-Token; 200 {To, SubmittedAt, MessageID, ErrorCode: 0, Message: "OK"}
              GET  /postmark/server
Errors use each ESP's envelope: Mailgun {"message"}, SendGrid {"errors": [{message, field, help}]},
Postmark {"ErrorCode", "Message"} (422 ErrorCode 406 for an inactive recipient, 300 invalid address).
Sources: https://documentation.mailgun.com/docs/mailgun/api-reference/openapi-final/tag/Messages/ ,
https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send ,
https://postmarkapp.com/developer/api/email-api , https://postmarkapp.com/developer/api/overview#error-codes
"""

import base64
import json
import re
import secrets
import uuid
from datetime import UTC, datetime
from email.utils import parseaddr

from .server import FakePlatform, FakeResponse, RecordedRequest

_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _multipart_fields(req: RecordedRequest) -> dict[str, list[str]]:
    """Text fields of a multipart/form-data or urlencoded body (files are kept as their filenames)."""
    content_type = req.headers.get("Content-Type", "")
    if "multipart/form-data" not in content_type:
        return req.form
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + req.body)
    fields: dict[str, list[str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        value = filename if filename else part.get_content()
        fields.setdefault(name, []).append(
            value if isinstance(value, str) else value.decode("utf-8", "replace")
        )
    return fields


class FakeEsp(FakePlatform):
    name = "esp"
    routes = [
        ("POST", r"/mailgun/v3/(?P<domain>[^/]+)/messages", "mailgun_send"),
        ("GET", r"/mailgun/v3/domains/(?P<domain>[^/]+)", "mailgun_domain"),
        ("POST", r"/sendgrid/v3/mail/send", "sendgrid_send"),
        ("GET", r"/sendgrid/v3/scopes", "sendgrid_scopes"),
        ("POST", r"/postmark/email", "postmark_send"),
        ("GET", r"/postmark/server", "postmark_server"),
    ]

    def __init__(
        self,
        *,
        mailgun_key: str = "mg-key",
        mailgun_domains: tuple[str, ...] = ("mg.example.com",),
        sendgrid_key: str = "SG.key",
        postmark_token: str = "pm-token",
        inactive: tuple[str, ...] = (),
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.mailgun_key = mailgun_key
        self.mailgun_domains = set(mailgun_domains)
        self.sendgrid_key = sendgrid_key
        self.postmark_token = postmark_token
        self.inactive = {a.lower() for a in inactive}

    def url(self, esp: str) -> str:
        return {"mailgun": f"{self.base_url}/mailgun/v3", "sendgrid": f"{self.base_url}/sendgrid/v3"}.get(
            esp, f"{self.base_url}/{esp}"
        )

    # --- Mailgun -------------------------------------------------------------------------------------
    def _mailgun_auth(self, req: RecordedRequest) -> FakeResponse | None:
        expected = "Basic " + base64.b64encode(f"api:{self.mailgun_key}".encode()).decode()
        if req.headers.get("Authorization") != expected:
            return FakeResponse(401, "Forbidden", content_type="text/plain")
        return None

    def mailgun_send(self, req: RecordedRequest, match) -> FakeResponse:
        denied = self._mailgun_auth(req)
        if denied:
            return denied
        if match["domain"] not in self.mailgun_domains:
            return FakeResponse(404, {"message": f"Domain not found: {match['domain']}"})
        fields = _multipart_fields(req)
        recipients = fields.get("to", [])
        if not recipients or not all(_ADDRESS.match(parseaddr(r)[1] or "") for r in recipients):
            return FakeResponse(
                400, {"message": "'to' parameter is not a valid address. please check documentation"}
            )
        message_id = (fields.get("h:Message-Id") or fields.get("h:Message-ID") or [""])[0]
        if not message_id:
            stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
            message_id = f"<{stamp}.{secrets.randbelow(10**6)}.{secrets.randbelow(10**5)}@{match['domain']}>"
        return FakeResponse(200, {"id": message_id, "message": "Queued. Thank you."})

    def mailgun_domain(self, req: RecordedRequest, match) -> FakeResponse:
        denied = self._mailgun_auth(req)
        if denied:
            return denied
        if match["domain"] not in self.mailgun_domains:
            return FakeResponse(404, {"message": "Domain not found"})
        return FakeResponse(
            200, {"domain": {"name": match["domain"], "state": "active"}, "receiving_dns_records": []}
        )

    # --- SendGrid ------------------------------------------------------------------------------------
    def sendgrid_send(self, req: RecordedRequest, match) -> FakeResponse:
        if req.headers.get("Authorization") != f"Bearer {self.sendgrid_key}":
            return FakeResponse(
                401,
                {
                    "errors": [
                        {
                            "message": "The provided authorization grant is invalid, expired, or revoked",
                            "field": None,
                            "help": None,
                        }
                    ]
                },
            )
        data = req.json
        errors = []
        if not data.get("subject") and not data.get("template_id"):
            errors.append({"message": "The subject is required.", "field": "subject", "help": None})
        for personalization in data.get("personalizations", []):
            for to in personalization.get("to", []):
                if not _ADDRESS.match(to.get("email", "")):
                    errors.append(
                        {
                            "message": "Does not contain a valid address.",
                            "field": "personalizations.0.to.0.email",
                            "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.personalizations.to",
                        }
                    )
        if errors:
            return FakeResponse(400, {"errors": errors})
        return FakeResponse(202, None, headers={"X-Message-Id": secrets.token_urlsafe(16)})

    def sendgrid_scopes(self, req: RecordedRequest, match) -> FakeResponse:
        if req.headers.get("Authorization") != f"Bearer {self.sendgrid_key}":
            return FakeResponse(401, {"errors": [{"field": None, "message": "authorization required"}]})
        return FakeResponse(200, {"scopes": ["mail.send"]})

    # --- Postmark ------------------------------------------------------------------------------------
    def postmark_send(self, req: RecordedRequest, match) -> FakeResponse:
        if req.headers.get("X-Postmark-Server-Token") != self.postmark_token:
            return FakeResponse(
                401,
                {
                    "ErrorCode": 10,
                    "Message": "The Server Token you provided in the X-Postmark-Server-Token request header was invalid. Please verify that you are using a valid token.",
                },
            )
        data = req.json
        to = data.get("To", "")
        address = parseaddr(to)[1]
        if not _ADDRESS.match(address):
            return FakeResponse(
                422, {"ErrorCode": 300, "Message": f"Error parsing 'To': Illegal email address '{to}'."}
            )
        if address.lower() in self.inactive:
            return FakeResponse(
                422,
                {
                    "ErrorCode": 406,
                    "Message": "You tried to send to a recipient that has been marked as inactive.\n"
                    f"Found inactive addresses: {address}.\n"
                    "Inactive recipients are ones that have generated a hard bounce or a spam complaint.",
                },
            )
        return FakeResponse(
            200,
            {
                "To": to,
                "SubmittedAt": datetime.now(UTC).isoformat(),
                "MessageID": str(uuid.uuid4()),
                "ErrorCode": 0,
                "Message": "OK",
            },
        )

    def postmark_server(self, req: RecordedRequest, match) -> FakeResponse:
        if req.headers.get("X-Postmark-Server-Token") != self.postmark_token:
            return FakeResponse(401, {"ErrorCode": 10, "Message": "Bad or missing Server API token."})
        return FakeResponse(
            200, {"ID": 1, "Name": "Alexia", "InboundAddress": "inbound@inbound.postmarkapp.com"}
        )

    @staticmethod
    def multipart_fields(req: RecordedRequest) -> dict[str, list[str]]:
        return _multipart_fields(req)

    @staticmethod
    def json_body(req: RecordedRequest):
        return json.loads(req.body)
