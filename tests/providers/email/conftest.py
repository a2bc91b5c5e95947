"""Real servers for the e-mail tests: Dovecot (IMAP), aiosmtpd (SMTP), and the fake ESP APIs.

Dovecot comes from Debian (`apt-get install dovecot-imapd`); it runs from a config file in a temp
dir with non-root paths, plaintext auth on 127.0.0.1, a passwd-file and Maildir storage. The tests
that need it are skipped only when the binary is not installed.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from providers.fakes.esp import FakeEsp
from tests.factories import ChannelFactory

MAILBOX_USER = "support@acme.example"
MAILBOX_PASSWORD = "mailbox-pw"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class Dovecot:
    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.conf = root / "dovecot.conf"

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture(scope="session")
def dovecot():
    binary = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)
    if binary is None:
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    root = Path(tempfile.mkdtemp(prefix="alexia-dovecot-"))
    root.chmod(0o755)
    port = _free_port()
    if os.geteuid() == 0:
        # Dovecot refuses to give root a mailbox; its own system user owns the Maildir instead.
        owner = pwd.getpwnam("dovecot")
        internal = "default_internal_user = dovecot\ndefault_login_user = dovenull\n"
    else:
        owner = pwd.getpwuid(os.geteuid())
        internal = f"default_internal_user = {owner.pw_name}\ndefault_login_user = {owner.pw_name}\n"
    (root / "mail").mkdir()
    (root / "home").mkdir()
    if os.geteuid() == 0:
        for sub in ("mail", "home"):
            os.chown(root / sub, owner.pw_uid, owner.pw_gid)
    (root / "passwd").write_text(f"{MAILBOX_USER}:{{PLAIN}}{MAILBOX_PASSWORD}\n")
    (root / "dovecot.conf").write_text(
        f"""base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {min(owner.pw_uid, 100) if owner.pw_uid else 1}
{internal}passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = static
  args = uid={owner.pw_uid} gid={owner.pw_gid} home={root}/home/%u
}}
mail_location = maildir:{root}/mail/%u
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""
    )
    server = Dovecot(root, port)
    subprocess.run([binary, "-c", str(server.conf)], check=True)
    try:
        _wait_port(port)
        yield server
    finally:
        subprocess.run([binary, "-c", str(server.conf), "stop"], check=False)
        shutil.rmtree(root, ignore_errors=True)


class SmtpSink:
    """aiosmtpd handler keeping every accepted envelope (a real SMTP server on 127.0.0.1)."""

    def __init__(self) -> None:
        self.envelopes: list = []
        self.refuse: dict[str, str] = {}
        self.logins: list[str] = []

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == MAILBOX_USER
            and auth_data.password.decode() == MAILBOX_PASSWORD
        )
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return self.refuse[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self):
        return [message_from_bytes(e.content, policy=policy.default) for e in self.envelopes]

    def wait(self, count: int, timeout: float = 5.0):
        deadline = time.monotonic() + timeout
        while len(self.envelopes) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages()


@pytest.fixture
def smtp_server():
    sink = SmtpSink()
    # AUTH over plain TCP is fine on loopback; production servers use STARTTLS or SSL.
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=_free_port(),
        authenticator=sink.authenticate,
        auth_require_tls=False,
        auth_required=True,
    )
    controller.start()
    try:
        yield controller, sink
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def _esp_server():
    with FakeEsp(mailgun_domains=("mg.acme.example",), inactive=("gone@example.net",)) as fake:
        yield fake


@pytest.fixture
def fake_esp(_esp_server):
    _esp_server.reset()
    yield _esp_server
    _esp_server.reset()


def mailbox_channel(*, smtp_port: int, imap_port: int | None = None, **config):
    values = {
        "esp": "imap",
        "from_email": MAILBOX_USER,
        "from_name": "Acme Support",
        "domain": "acme.example",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_security": "none",
        **config,
    }
    if imap_port:
        values.update(imap_host="127.0.0.1", imap_port=imap_port, imap_security="none")
    return ChannelFactory(
        kind="email", config=values, credentials={"username": MAILBOX_USER, "password": MAILBOX_PASSWORD}
    )
