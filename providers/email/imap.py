"""Reading a plain mailbox over IMAP4rev1 (RFC 3501) with imaplib.

The poller never changes the mailbox: it searches recent mail by date, fetches with BODY.PEEK[] (so
nothing is marked \\Seen for people who also read the mailbox), and leaves de-duplication to the
webhook-event log, keyed by (UIDVALIDITY, UID): RFC 3501 §2.3.1.1 guarantees a UID names the same
message as long as the mailbox's UIDVALIDITY is unchanged.
"""

import imaplib
import re
import ssl
from datetime import date, timedelta

from ..errors import ConfigurationError, PermanentFailure, TransientFailure

_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _imap_date(day: date) -> str:
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year}"


class ImapMailbox:
    """One logged-in IMAP session on one mailbox; use as a context manager."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        password: str,
        security: str = "ssl",
        mailbox: str = "INBOX",
        timeout: float = 30.0,
    ) -> None:
        if not host or not username:
            raise ConfigurationError("the e-mail channel needs imap_host and the credential 'username'")
        self.host, self.port, self.security = host, port, security
        self.username, self.password, self.mailbox = username, password, mailbox
        self.timeout = timeout
        self.client: imaplib.IMAP4 | None = None
        self.uidvalidity = 0

    def __enter__(self) -> "ImapMailbox":
        try:
            if self.security == "ssl":
                client = imaplib.IMAP4_SSL(
                    self.host, self.port, ssl_context=ssl.create_default_context(), timeout=self.timeout
                )
            else:
                client = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
                if self.security == "starttls":
                    client.starttls(ssl.create_default_context())
        except (OSError, imaplib.IMAP4.error) as exc:
            raise TransientFailure(f"cannot connect to IMAP {self.host}:{self.port}: {exc}") from exc
        self.client = client
        try:
            client.login(self.username, self.password)
        except imaplib.IMAP4.error as exc:
            self._logout()
            raise PermanentFailure("imap_auth", f"IMAP login refused: {exc}", channel_error=True) from exc
        except OSError as exc:
            self._logout()
            raise TransientFailure(f"IMAP login failed: {exc}") from exc
        try:
            status, _ = client.select(self._quoted(self.mailbox), readonly=True)
            if status != "OK":
                raise PermanentFailure("imap_mailbox", f"IMAP mailbox {self.mailbox!r} cannot be opened")
            self.uidvalidity = self._read_uidvalidity()
        except (OSError, imaplib.IMAP4.abort) as exc:
            self._logout()
            raise TransientFailure(f"IMAP select failed: {exc}") from exc
        except BaseException:
            self._logout()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._logout()

    def _logout(self) -> None:
        if self.client is not None:
            try:
                self.client.logout()
            except (OSError, imaplib.IMAP4.error):
                pass
            self.client = None

    @staticmethod
    def _quoted(name: str) -> str:
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def _read_uidvalidity(self) -> int:
        status, data = self.client.status(self._quoted(self.mailbox), "(UIDVALIDITY)")
        match = (
            _UIDVALIDITY.search(b" ".join(d for d in data if isinstance(d, bytes)))
            if status == "OK"
            else None
        )
        if not match:
            raise PermanentFailure("imap_uidvalidity", "the IMAP server did not report UIDVALIDITY")
        return int(match.group(1))

    def recent_uids(self, *, days: int, today: date) -> list[int]:
        """UIDs of the messages with an internal date within the last `days` days, ascending."""
        since = _imap_date(today - timedelta(days=days))
        try:
            status, data = self.client.uid("SEARCH", None, "SINCE", since)
        except (OSError, imaplib.IMAP4.abort) as exc:
            raise TransientFailure(f"IMAP search failed: {exc}") from exc
        if status != "OK":
            raise TransientFailure(f"IMAP search answered {status}")
        return sorted(int(token) for token in b" ".join(data or [b""]).split() if token.isdigit())

    def fetch(self, uid: int) -> bytes | None:
        """The raw RFC 822 bytes of one message, or None when it was expunged meanwhile."""
        try:
            status, data = self.client.uid("FETCH", str(uid), "(BODY.PEEK[])")
        except (OSError, imaplib.IMAP4.abort) as exc:
            raise TransientFailure(f"IMAP fetch of UID {uid} failed: {exc}") from exc
        if status != "OK":
            raise TransientFailure(f"IMAP fetch of UID {uid} answered {status}")
        for item in data or []:
            if isinstance(item, tuple) and len(item) == 2:
                return bytes(item[1])
        return None
