from django.db.models import QuerySet

from .models import Membership, Organization, Role


def organization_list_for_user(*, user) -> QuerySet[Organization]:
    if not user.is_authenticated:
        return Organization.objects.none()
    return Organization.objects.filter(memberships__user=user).order_by("name")


def membership_get(*, user, organization_id: int | None) -> Membership | None:
    if not user.is_authenticated or organization_id is None:
        return None
    return (
        Membership.objects.select_related("organization")
        .filter(user=user, organization_id=organization_id)
        .first()
    )


def admin_organization_ids(*, user) -> list[int]:
    """Organizations whose data this user may manage in Django admin (owner or admin role)."""
    return list(
        Membership.objects.filter(user=user, role__in=[Role.OWNER, Role.ADMIN]).values_list(
            "organization_id", flat=True
        )
    )
