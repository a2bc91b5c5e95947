import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.text import slugify

from .models import ApiKey, Membership, Organization, Role

User = get_user_model()


def _unique_slug(name: str) -> str:
    base = slugify(name)[:60] or "org"
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def api_key_create(*, organization: Organization, name: str, created_by=None) -> tuple[ApiKey, str]:
    """Create an API key; returns (key row, raw key). The raw key is never stored nor shown again."""
    prefix = secrets.token_hex(4)
    raw = f"alx_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        organization=organization,
        name=name,
        prefix=prefix,
        hashed_key=ApiKey.hash(raw),
        created_by=created_by,
    )
    return key, raw


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    key = (
        ApiKey.objects.select_related("organization")
        .filter(hashed_key=ApiKey.hash(raw_key), revoked_at__isnull=True)
        .first()
    )
    if key is not None and (
        key.last_used_at is None or (timezone.now() - key.last_used_at).total_seconds() > 60
    ):
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return key


def api_key_revoke(*, api_key: ApiKey) -> None:
    ApiKey.objects.filter(pk=api_key.pk).update(revoked_at=timezone.now())


@transaction.atomic
def organization_create(
    *, name: str, owner_email: str, owner_password: str | None = None, with_api_key: bool = False
) -> dict:
    """Create an organization and its owner (or add an existing user as owner).

    Raises ValidationError when the name or the owner's e-mail/password is invalid. Returns the
    organization, the owner, the password when one was generated, and the raw API key when asked.
    """
    name = (name or "").strip()
    if not name:
        raise ValidationError("organization name must not be empty")
    owner_email = (owner_email or "").strip().lower()
    validate_email(owner_email)
    generated_password = None
    user = User.objects.filter(username=owner_email).first()
    if user is None:
        if owner_password is None:
            generated_password = owner_password = secrets.token_urlsafe(12)
        validate_password(owner_password)
        user = User.objects.create_user(username=owner_email, email=owner_email, password=owner_password)
    elif owner_password is not None:
        validate_password(owner_password, user)
        user.set_password(owner_password)
        user.save(update_fields=["password"])
    # Owners and admins manage their organization in Django admin (scoped by admin_scoping).
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    org = Organization.objects.create(name=name, slug=_unique_slug(name))
    Membership.objects.create(user=user, organization=org, role=Role.OWNER)
    raw_key = None
    if with_api_key:
        _, raw_key = api_key_create(organization=org, name="default", created_by=user)
    return {"organization": org, "owner": user, "password": generated_password, "api_key": raw_key}


def membership_add(*, organization: Organization, user, role: str = Role.AGENT) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        organization=organization, user=user, defaults={"role": role}
    )
    if role in (Role.OWNER, Role.ADMIN) and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return membership


def password_set_url(*, user) -> str:
    """A one-time link to choose a password (Django's reset token: void once the password changes)."""
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    path = reverse("password-set", kwargs={"uidb64": uidb64, "token": token})
    return f"{settings.PUBLIC_BASE_URL}{path}"


@transaction.atomic
def membership_invite(*, organization: Organization, email: str, role: str = Role.AGENT, invited_by=None):
    """Add the person with `email` to `organization` with `role`, creating their account if needed.

    Returns (membership, set_password_url). A new account gets no password: the link (also e-mailed
    on commit) lets them choose one. An existing account just gains the membership (url None).
    Raises ValidationError for an invalid e-mail or role.
    """
    email = (email or "").strip().lower()
    validate_email(email)
    if role not in Role.values:
        raise ValidationError({"role": f"unknown role {role!r}"})
    user = User.objects.filter(username=email).first()
    url = None
    if user is None:
        user = User.objects.create_user(username=email, email=email)
        user.set_unusable_password()
        user.save(update_fields=["password"])
        url = password_set_url(user=user)
        inviter = getattr(invited_by, "email", "") or "An owner"
        transaction.on_commit(
            lambda: send_mail(
                f"You are invited to {organization.name} on Alexia",
                f"{inviter} added you to {organization.name} as {role}.\n\n"
                f"Choose your password here (the link works once):\n{url}\n",
                None,
                [email],
                fail_silently=True,
            )
        )
    membership = membership_add(organization=organization, user=user, role=role)
    return membership, url
