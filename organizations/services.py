import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
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
