from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from alexia.admin_scoping import OrganizationScopedAdmin

from .models import ApiKey, Membership, Organization, Role, Team
from .services import api_key_create, api_key_revoke, membership_add, membership_invite

admin.site.site_header = "Alexia administration"
admin.site.site_title = "Alexia admin"
admin.site.index_title = "Your organizations"


def _owner_of(request, organization_id: int) -> bool:
    if request.user.is_superuser:
        return True
    return Membership.objects.filter(
        user=request.user, organization_id=organization_id, role=Role.OWNER
    ).exists()


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin):
    organization_path = "pk"
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]

    def get_readonly_fields(self, request, obj=None):
        return ["created_at"] if request.user.is_superuser else ["slug", "created_at"]

    # New organizations come from `manage.py org_create` (or a superuser): it also makes the owner.
    def has_add_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["user", "organization", "role"]

    def clean(self):
        cleaned = super().clean()
        organization = cleaned.get("organization") or getattr(self.instance, "organization", None)
        if (
            cleaned.get("role") == Role.OWNER
            and organization is not None
            and not _owner_of(self.request, organization.pk)
        ):
            raise ValidationError({"role": "Only an owner of the organization can make someone an owner."})
        return cleaned


class MembershipInviteForm(MembershipForm):
    """Add a member by e-mail: an existing account joins, a new one is created with a set-password link."""

    email = forms.EmailField(help_text="Their account is created if needed; they choose their own password.")

    class Meta:
        model = Membership
        fields = ["email", "organization", "role"]


@admin.register(Membership)
class MembershipAdmin(OrganizationScopedAdmin):
    form = MembershipForm
    add_form = MembershipInviteForm
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", ("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["user__username", "user__email", "organization__name"]

    def get_readonly_fields(self, request, obj=None):
        return ["user", "organization", "created_at"] if obj else []

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        form = super().get_form(request, obj, change=change, **kwargs)
        form.request = request
        return form

    def get_fields(self, request, obj=None):
        return (
            ["email", "organization", "role"]
            if obj is None
            else ["user", "organization", "role", "created_at"]
        )

    def _may_edit(self, request, obj) -> bool:
        """Nobody edits their own membership here (no lock-outs), and only owners touch owners."""
        if obj is None or request.user.is_superuser:
            return True
        if obj.user_id == request.user.pk:
            return False
        return obj.role != Role.OWNER or _owner_of(request, obj.organization_id)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and self._may_edit(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and self._may_edit(request, obj)

    def save_model(self, request, obj, form, change):
        # membership_add / membership_invite also give owners and admins staff status (admin access).
        if change:
            saved = membership_add(organization=obj.organization, user=obj.user, role=obj.role)
        else:
            saved, url = membership_invite(
                organization=obj.organization,
                email=form.cleaned_data["email"],
                role=obj.role,
                invited_by=request.user,
            )
            if url:
                messages.success(
                    request,
                    f"{saved.user.email} was invited and e-mailed this link to choose a password "
                    f"(shown once, works once): {url}",
                )
        obj.pk = saved.pk
        obj.user = saved.user
        obj._state = saved._state


@admin.register(Team)
class TeamAdmin(OrganizationScopedAdmin):
    list_display = ["name", "organization", "created_at"]
    list_filter = [("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name"]
    filter_horizontal = ["members"]


@admin.register(ApiKey)
class ApiKeyAdmin(OrganizationScopedAdmin):
    """Keys are created by api_key_create: the raw key is shown once, in the success message."""

    list_display = [
        "name",
        "prefix_display",
        "organization",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = [
        ("organization", admin.RelatedOnlyFieldListFilter),
        ("revoked_at", admin.EmptyFieldListFilter),
    ]
    search_fields = ["name", "prefix"]
    actions = ["revoke"]

    @admin.display(description="key", ordering="prefix")
    def prefix_display(self, obj) -> str:
        return f"alx_{obj.prefix}_…"

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "organization"]
        return [
            "name",
            "organization",
            "prefix_display",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["organization", "prefix_display", "created_by", "created_at", "last_used_at", "revoked_at"]

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name"])
            return
        key, raw = api_key_create(organization=obj.organization, name=obj.name, created_by=request.user)
        obj.pk = key.pk
        obj._state = key._state
        obj.prefix = key.prefix
        messages.warning(
            request,
            f"Your new API key for {key.organization}: {raw} — copy it now, it will not be shown again.",
        )

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke(self, request, queryset):
        count = 0
        for key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=key)
            count += 1
        self.message_user(request, f"Revoked {count} API key(s).", messages.SUCCESS)
