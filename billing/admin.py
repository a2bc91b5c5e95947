from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from alexia.admin_scoping import OrganizationScopedAdmin, ReadOnlyInline
from organizations.models import Organization

from . import services
from .errors import InsufficientCredits
from .models import CreditAccount, CreditEntry, Invoice, InvoiceLine, Plan, Price, UsageRecord


class PlatformStaffOnly:
    """The price book belongs to the platform: only superusers see or edit it."""

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class PriceInline(admin.TabularInline):
    model = Price
    extra = 0
    fields = ["meter", "channel_kind", "country", "unit_price", "currency", "effective_from"]
    ordering = ["meter", "channel_kind", "country", "-effective_from"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Plan)
class PlanAdmin(PlatformStaffOnly, admin.ModelAdmin):
    list_display = ["code", "name", "currency", "is_default", "max_channels", "max_agents", "max_messages_per_day", "overdraft"]
    inlines = [PriceInline]


@admin.register(Price)
class PriceAdmin(PlatformStaffOnly, admin.ModelAdmin):
    """A price in effect is history: change it by adding a new version with a later effective date."""

    list_display = ["meter", "channel_kind", "country", "unit_price", "currency", "effective_from", "plan"]
    list_filter = ["plan", "meter", "channel_kind"]
    search_fields = ["meter"]
    date_hierarchy = "effective_from"

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.effective_from <= timezone.now():
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return bool(
            obj is not None and obj.effective_from > timezone.now() and request.user.is_active and request.user.is_superuser
        )


@admin.register(UsageRecord)
class UsageRecordAdmin(OrganizationScopedAdmin):
    """The usage ledger is append-only: rows are only looked at, never added, changed or deleted here."""

    read_only = True
    list_display = ["occurred_at", "meter", "quantity", "unit_price", "cost", "channel_kind", "channel_id", "organization"]
    list_filter = ["meter", "channel_kind", ("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["idempotency_key", "meter"]
    date_hierarchy = "occurred_at"

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class CreditEntryForm(forms.ModelForm):
    kind = forms.ChoiceField(
        choices=[(k, v) for k, v in CreditEntry.Kind.choices if k in (CreditEntry.Kind.GRANT, CreditEntry.Kind.ADJUSTMENT)]
    )
    organization = forms.ModelChoiceField(queryset=Organization.objects.all())

    class Meta:
        model = CreditEntry
        fields = ["organization", "kind", "amount", "reference"]


@admin.register(CreditEntry)
class CreditEntryAdmin(OrganizationScopedAdmin):
    """The credit ledger. Owners and admins look; platform staff (superusers) add grants and adjustments,
    which go through credit_add like every other movement (locked, balance kept equal to the sum)."""

    read_only = True
    form = CreditEntryForm
    list_display = ["created_at", "organization", "kind", "amount", "balance_after", "reference", "created_by"]
    list_filter = ["kind", ("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["reference", "idempotency_key"]

    def has_add_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            entry, _ = services.credit_add(
                organization_id=data["organization"].pk,
                amount=data["amount"],
                kind=data["kind"],
                idempotency_key=f"admin:{request.user.pk}:{timezone.now().isoformat()}",
                reference=data["reference"] or f"{data['kind']} by {request.user.get_username()}",
                created_by=request.user.get_username(),
            )
        except (InsufficientCredits, ValueError) as exc:
            messages.error(request, str(exc))
            return
        obj.pk = entry.pk
        obj._state.adding = False


@admin.register(CreditAccount)
class CreditAccountAdmin(OrganizationScopedAdmin):
    """Balances are the ledger's sum and change only through credit entries; superusers set the plan,
    overdraft and alert threshold here."""

    list_display = ["organization", "plan", "balance", "held", "currency", "overdraft", "low_balance_threshold"]
    readonly_fields = ["organization", "balance", "held", "currency", "low_balance_alerted"]
    fields = ["organization", "plan", "balance", "held", "currency", "overdraft", "low_balance_threshold", "low_balance_alerted"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        CreditAccount.objects.filter(pk=obj.pk).update(
            plan=obj.plan, overdraft=obj.overdraft, low_balance_threshold=obj.low_balance_threshold
        )


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = ["meter", "channel_kind", "quantity", "unit_price", "amount"]
    readonly_fields = fields


@admin.register(Invoice)
class InvoiceAdmin(OrganizationScopedAdmin):
    read_only = True
    list_display = ["number", "organization", "period_start", "total", "currency", "status", "issued_at"]
    list_filter = ["status", ("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["number"]
    inlines = [InvoiceLineInline]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
