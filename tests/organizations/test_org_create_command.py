import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from organizations.models import Membership, Organization, Role
from organizations.services import api_key_authenticate

from ..factories import UserFactory

pytestmark = pytest.mark.django_db
BASE_DIR = Path(settings.BASE_DIR)


def run(*args) -> dict:
    out = StringIO()
    call_command("org_create", *args, stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1, lines
    return json.loads(lines[0])


def test_prints_one_json_line_and_creates_the_owner():
    result = run("Acme Corp", "--owner", "Boss@Acme.test")
    org = Organization.objects.get(pk=result["organization_id"])
    assert org.name == "Acme Corp"
    assert result["owner"] == "boss@acme.test"
    assert "api_key" not in result
    user = get_user_model().objects.get(username="boss@acme.test")
    assert user.is_staff and not user.is_superuser
    assert user.check_password(result["password"])
    assert Membership.objects.get(user=user, organization=org).role == Role.OWNER


def test_api_key_option():
    result = run("Keyed", "--owner", "k@example.com", "--password", "a-good-long-password", "--api-key")
    assert "password" not in result
    key = api_key_authenticate(raw_key=result["api_key"])
    assert key is not None and key.organization_id == result["organization_id"]
    assert result["api_key"] not in {key.hashed_key, key.prefix}


def test_existing_user_becomes_owner_and_keeps_their_password():
    user = UserFactory(username="existing@example.com")
    result = run("Second Org", "--owner", "existing@example.com")
    assert "password" not in result
    user.refresh_from_db()
    assert user.check_password("correct-horse-battery")
    assert user.is_staff
    assert Membership.objects.get(user=user, organization_id=result["organization_id"]).role == Role.OWNER


@pytest.mark.parametrize(
    "args, message",
    [
        (["Acme", "--owner", "not-an-email"], "valid email"),
        (["   ", "--owner", "boss@acme.test"], "name must not be empty"),
        (["Acme", "--owner", "boss@acme.test", "--password", "short"], "too short"),
    ],
)
def test_invalid_input_is_a_clear_error(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("org_create", *args, stdout=StringIO())
    assert not Organization.objects.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["Acme", "--owner", "nope"], "valid email"),
        (["", "--owner", "a@b.example"], "name must not be empty"),
    ],
)
def test_command_line_exits_non_zero(args, message, tmp_path):
    # Validation fails before any write: a throwaway SQLite file keeps the child off the test database.
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'child.sqlite3'}"}
    proc = subprocess.run(
        [sys.executable, "manage.py", "org_create", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert message in proc.stderr
    assert proc.stdout == ""
