"""Billing REST API (CONTRACT.md): usage, credits, invoices, CSV exports, credit checkout.

Same authentication and permission as every /api/v1/ view (the REST_FRAMEWORK defaults: organization
API key or a member's session). The organization comes from the request and every selector takes it,
so another organization's rows answer 404 or are simply absent.
"""

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from organizations.models import ApiKey, Role

from . import selectors, services
from .errors import BillingError
from .exports import invoice_csv, usage_csv

MAX_RANGE_DAYS = 366


class BillingApiError(exceptions.APIException):
    """A billing refusal in the API's error shape (the project's exception handler reads default_code)."""

    def __init__(self, code: str, message: str, status_code: int):
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.default_code = code


def money(value) -> str:
    return f"{value:.4f}"


# --- serializers ---------------------------------------------------------------------------------------
class PeriodQuerySerializer(serializers.Serializer):
    from_ = serializers.DateField(required=False, help_text="First UTC day (default: the 1st of this month).")
    to = serializers.DateField(required=False, help_text="Last UTC day, inclusive (default: today).")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields

    def validate(self, attrs):
        today = timezone.now().date()
        start = attrs.get("from") or today.replace(day=1)
        end = attrs.get("to") or today
        if start > end:
            raise serializers.ValidationError({"from": ["Must not be after `to`."]})
        if (end - start).days >= MAX_RANGE_DAYS:
            raise serializers.ValidationError({"to": [f"At most {MAX_RANGE_DAYS} days per request."]})
        return {**attrs, "from": start, "to": end}


class UsageQuerySerializer(PeriodQuerySerializer):
    group_by = serializers.CharField(
        required=False, default="channel,meter,day", help_text="Comma-separated: channel, meter, day."
    )

    def validate_group_by(self, value: str) -> tuple[str, ...]:
        parts = tuple(dict.fromkeys(p.strip() for p in value.split(",") if p.strip()))
        unknown = [p for p in parts if p not in selectors.GROUP_BY_FIELDS]
        if unknown:
            raise serializers.ValidationError(f"Unknown: {', '.join(unknown)}. Use channel, meter, day.")
        return parts


class UsageRowSerializer(serializers.Serializer):
    channel = serializers.IntegerField(allow_null=True)
    channel_kind = serializers.CharField(allow_null=True)
    meter = serializers.CharField(allow_null=True)
    day = serializers.DateField(allow_null=True)
    quantity = serializers.IntegerField()
    cost = serializers.SerializerMethodField()

    def get_cost(self, row) -> str:
        return money(row["cost"])


class UsageResponseSerializer(serializers.Serializer):
    results = UsageRowSerializer(many=True)
    total_cost = serializers.CharField()
    currency = serializers.CharField()


class CreditEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    amount = serializers.SerializerMethodField()
    balance_after = serializers.SerializerMethodField()
    reference = serializers.CharField()
    created_at = serializers.DateTimeField()

    def get_amount(self, entry) -> str:
        return money(entry.amount)

    def get_balance_after(self, entry) -> str:
        return money(entry.balance_after)


class CreditsResponseSerializer(serializers.Serializer):
    balance = serializers.CharField()
    currency = serializers.CharField()
    entries = CreditEntrySerializer(many=True)


class InvoiceLineSerializer(serializers.Serializer):
    meter = serializers.CharField()
    channel_kind = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.SerializerMethodField()
    amount = serializers.SerializerMethodField()

    def get_unit_price(self, line) -> str:
        return f"{line.unit_price:.6f}"

    def get_amount(self, line) -> str:
        return money(line.amount)


class InvoiceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    issued_at = serializers.DateTimeField()
    currency = serializers.CharField()
    total = serializers.SerializerMethodField()
    lines = InvoiceLineSerializer(many=True)

    def get_total(self, invoice) -> str:
        return money(invoice.total)


class CheckoutRequestSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0)
    success_url = serializers.URLField(required=False)
    cancel_url = serializers.URLField(required=False)


class CheckoutSerializer(serializers.Serializer):
    id = serializers.CharField(source="stripe_session_id")
    url = serializers.URLField()
    amount = serializers.SerializerMethodField()
    currency = serializers.CharField()
    status = serializers.CharField()

    def get_amount(self, session) -> str:
        return money(session.amount)


# --- views -------------------------------------------------------------------------------------------
class BillingApiView(APIView):
    def handle_exception(self, exc):
        if isinstance(exc, BillingError):
            exc = BillingApiError(exc.code, exc.message, exc.status_code)
        return super().handle_exception(exc)

    @property
    def organization_id(self) -> int:
        return self.request.organization.pk

    def validated(self, serializer_class, data):
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def require_billing_manager(self):
        """Money moves need an API key or an owner/admin session (agents may read, not buy)."""
        if isinstance(self.request.auth, ApiKey):
            return
        membership = getattr(self.request, "membership", None)
        if membership is None or membership.role not in (Role.OWNER, Role.ADMIN):
            raise exceptions.PermissionDenied("Only owners and admins can buy credits.")


class UsageView(BillingApiView):
    @extend_schema(
        operation_id="usage_list",
        summary="Usage and its cost",
        description="Summed over UTC days from `from` to `to` (inclusive), grouped by the `group_by` "
        "dimensions; dimensions not grouped by are null. Money as decimal strings.",
        parameters=[UsageQuerySerializer],
        responses={200: UsageResponseSerializer},
        tags=["billing"],
    )
    def get(self, request):
        query = self.validated(UsageQuerySerializer, request.query_params)
        rows = selectors.usage_summary(
            organization_id=self.organization_id, start=query["from"], end=query["to"], group_by=query["group_by"]
        )
        account = selectors.credit_account_get(organization_id=self.organization_id)
        total = selectors.usage_total(organization_id=self.organization_id, start=query["from"], end=query["to"])
        return Response(
            {
                "results": UsageRowSerializer(rows, many=True).data,
                "total_cost": money(total),
                "currency": account.currency,
            }
        )


class UsageExportView(BillingApiView):
    @extend_schema(
        operation_id="usage_export",
        summary="Usage rows as CSV",
        parameters=[PeriodQuerySerializer],
        responses={(200, "text/csv"): str},
        tags=["billing"],
    )
    def get(self, request):
        query = self.validated(PeriodQuerySerializer, request.query_params)
        rows = selectors.usage_list(organization_id=self.organization_id, start=query["from"], end=query["to"])
        return usage_csv(rows.select_related("reverses"), filename=f"usage-{query['from']}-{query['to']}.csv")


class CreditsView(BillingApiView):
    @extend_schema(
        operation_id="credits_retrieve",
        summary="Credit balance and the latest ledger entries",
        parameters=[OpenApiParameter("limit", int, description="Entries, newest first (default 100, at most 500).")],
        responses={200: CreditsResponseSerializer},
        tags=["billing"],
    )
    def get(self, request):
        try:
            limit = min(max(int(request.query_params.get("limit", 100)), 1), 500)
        except ValueError:
            raise exceptions.ValidationError({"limit": ["A number from 1 to 500."]}) from None
        account = selectors.credit_account_get(organization_id=self.organization_id)
        entries = selectors.credit_entry_list(organization_id=self.organization_id, limit=limit)
        return Response(
            {
                "balance": money(account.balance),
                "currency": account.currency,
                "entries": CreditEntrySerializer(entries, many=True).data,
            }
        )


class CheckoutView(BillingApiView):
    @extend_schema(
        operation_id="credits_checkout",
        summary="Buy credit with Stripe Checkout",
        description="Opens a Stripe Checkout session; send the customer to `url`. The credit is added when "
        "Stripe confirms the payment (checkout.session.completed webhook).",
        request=CheckoutRequestSerializer,
        responses={201: CheckoutSerializer},
        tags=["billing"],
    )
    def post(self, request):
        self.require_billing_manager()
        data = self.validated(CheckoutRequestSerializer, request.data)
        billing_url = request.build_absolute_uri("/billing/")
        try:
            session = services.checkout_create(
                organization_id=self.organization_id,
                amount=data["amount"],
                success_url=data.get("success_url") or f"{billing_url}?checkout=success",
                cancel_url=data.get("cancel_url") or f"{billing_url}?checkout=cancelled",
                created_by=request.user,
            )
        except ValueError as exc:
            raise exceptions.ValidationError({"amount": [str(exc)]}) from exc
        return Response(CheckoutSerializer(session).data, status=status.HTTP_201_CREATED)


class InvoiceListView(BillingApiView):
    @extend_schema(operation_id="invoices_list", summary="Issued invoices, newest first", responses={200: InvoiceSerializer(many=True)}, tags=["billing"])
    def get(self, request):
        invoices = selectors.invoice_list(organization_id=self.organization_id).prefetch_related("lines")
        return Response({"results": InvoiceSerializer(invoices, many=True).data, "next": None})


class InvoiceDetailView(BillingApiView):
    @extend_schema(operation_id="invoices_retrieve", responses={200: InvoiceSerializer}, tags=["billing"])
    def get(self, request, pk: int):
        invoice = selectors.invoice_get(organization_id=self.organization_id, invoice_id=pk)
        return Response(InvoiceSerializer(invoice).data)


class InvoiceExportView(BillingApiView):
    @extend_schema(operation_id="invoices_export", responses={(200, "text/csv"): str}, tags=["billing"])
    def get(self, request, pk: int):
        return invoice_csv(selectors.invoice_get(organization_id=self.organization_id, invoice_id=pk))

