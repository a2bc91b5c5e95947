"""Django admin scoped per organization.

Superusers see everything. Other staff users see, add and change only rows of organizations where they
are owner or admin (organizations.selectors.admin_organization_ids); agents get no admin access at
all. Permissions come from membership, not from Django's permission tables, so an owner made by
`org_create` can use the admin without manual grants.

Scoping covers:
- get_queryset (changelists, and change/delete views, which then answer "not found" for others' rows);
- foreign-key and many-to-many choices (organization, channels, contacts, users, ...);
- object-level permission checks;
- related list filters (only RelatedOnlyFieldListFilter, which lists values of the scoped rows).
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from organizations.models import Organization
from organizations.selectors import admin_organization_ids

_CACHE_ATTR = "_alexia_admin_org_ids"


def admin_org_ids(request) -> list[int] | None:
    """Organization ids the request's user administers; None means all (superuser)."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return []
    if user.is_superuser:
        return None
    cached = getattr(request, _CACHE_ATTR, None)
    if cached is None:
        cached = admin_organization_ids(user=user)
        setattr(request, _CACHE_ATTR, cached)
    return cached


def scope_queryset(qs: models.QuerySet, org_ids: list[int] | None) -> models.QuerySet:
    """Filter any queryset of a tenant model (or of users) to the given organizations."""
    if org_ids is None:
        return qs
    model = qs.model
    if model is Organization:
        return qs.filter(pk__in=org_ids)
    if model is get_user_model():
        return qs.filter(memberships__organization_id__in=org_ids).distinct()
    try:
        model._meta.get_field("organization")
    except FieldDoesNotExist:
        return qs.none()
    return qs.filter(organization_id__in=org_ids)


class OrganizationScopedAdmin(admin.ModelAdmin):
    """Base of every admin of a tenant model. Subclasses set `organization_path` when the model's
    organization is not its own `organization` field ("pk" for Organization itself)."""

    organization_path = "organization"
    # Read-only models (logs, ledgers): nobody but a superuser adds or changes rows.
    read_only = False

    # --- permissions -----------------------------------------------------------------------------------
    def _object_org_id(self, obj) -> int | None:
        if self.organization_path == "pk":
            return obj.pk
        return getattr(obj, f"{self.organization_path}_id")

    def _allowed(self, request, obj=None) -> bool:
        ids = admin_org_ids(request)
        if ids is None:
            return True
        if not ids:
            return False
        return obj is None or self._object_org_id(obj) in ids

    def has_module_permission(self, request) -> bool:
        return self._allowed(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return self._allowed(request, obj)

    def has_add_permission(self, request) -> bool:
        return not self.read_only and self._allowed(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return not self.read_only and self._allowed(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._allowed(request, obj)

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        if self.organization_path == "organization" and "organization" not in initial:
            current = getattr(request, "organization", None)
            ids = admin_org_ids(request)
            if current is not None and (ids is None or current.pk in ids):
                initial["organization"] = current.pk
        return initial

    # --- rows and choices ------------------------------------------------------------------------------
    def get_queryset(self, request):
        qs = super().get_queryset(request)
        ids = admin_org_ids(request)
        if ids is None:
            return qs
        if self.organization_path == "pk":
            return qs.filter(pk__in=ids)
        return qs.filter(**{f"{self.organization_path}_id__in": ids})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            kwargs["queryset"] = scope_queryset(
                db_field.remote_field.model._default_manager.all(), admin_org_ids(request)
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            kwargs["queryset"] = scope_queryset(
                db_field.remote_field.model._default_manager.all(), admin_org_ids(request)
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class OrganizationScopedInline(admin.TabularInline):
    """An inline whose choices are scoped like OrganizationScopedAdmin's; permissions follow the parent."""

    extra = 0

    def _allowed(self, request, obj=None) -> bool:
        ids = admin_org_ids(request)
        return ids is None or bool(ids)

    def has_view_permission(self, request, obj=None) -> bool:
        return self._allowed(request, obj)

    def has_add_permission(self, request, obj=None) -> bool:
        return self._allowed(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._allowed(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._allowed(request, obj)

    def get_queryset(self, request):
        return scope_queryset(super().get_queryset(request), admin_org_ids(request))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            kwargs["queryset"] = scope_queryset(
                db_field.remote_field.model._default_manager.all(), admin_org_ids(request)
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReadOnlyInline(OrganizationScopedInline):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
