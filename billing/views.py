"""Billing pages for owners (balance, usage chart, invoices, buying credit) and the Stripe webhook."""

import functools
from datetime import date
from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from organizations.models import Role

from . import selectors, services
from .errors import BillingError, WebhookVerificationError
from .exports import invoice_csv, usage_csv

TOPUP_CHOICES = (Decimal("20"), Decimal("50"), Decimal("100"), Decimal("250"))


def owner_required(view):
    """Billing is the owners' business: other members (and users without an organization) get 403."""

    @functools.wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        membership = getattr(request, "membership", None)
        if membership is None or membership.role != Role.OWNER:
            return HttpResponseForbidden("Only the organization's owners can open billing.")
        return view(request, *args, **kwargs)

    return wrapper


def _parse_date(value: str | None, default: date) -> date:
    try:
        return date.fromisoformat(value) if value else default
    except ValueError:
        return default


@owner_required
@require_GET
def billing_page(request):
    organization_id = request.organization.pk
    today = timezone.now().date()
    start = today.replace(day=1)
    account = selectors.credit_account_get(organization_id=organization_id)
    by_kind = selectors.usage_by_channel_kind(organization_id=organization_id, start=start, end=today)
    checkout = request.GET.get("checkout")
    if checkout == "success":
        messages.success(request, "Thank you: your credit is added as soon as Stripe confirms the payment.")
    elif checkout == "cancelled":
        messages.info(request, "The payment was cancelled; nothing was charged.")
    context = {
        "account": account,
        "available": account.balance - account.held,
        "banner": selectors.billing_banner(organization_id=organization_id),
        "month_start": start,
        "today": today,
        "usage_by_kind": by_kind,
        "month_total": sum((row["cost"] for row in by_kind), Decimal("0")),
        "invoices": selectors.invoice_list(organization_id=organization_id)[:24],
        "entries": selectors.credit_entry_list(organization_id=organization_id, limit=20),
        "topup_choices": TOPUP_CHOICES,
    }
    return render(request, "billing/page.html", context)


@owner_required
@require_POST
def buy_credits(request):
    try:
        amount = Decimal(request.POST.get("amount", ""))
    except InvalidOperation:
        messages.error(request, "Choose an amount to buy.")
        return redirect("billing:page")
    page = request.build_absolute_uri(reverse("billing:page"))
    try:
        session = services.checkout_create(
            organization_id=request.organization.pk,
            amount=amount,
            success_url=f"{page}?checkout=success",
            cancel_url=f"{page}?checkout=cancelled",
            created_by=request.user,
        )
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("billing:page")
    except BillingError as exc:
        messages.error(request, exc.message)
        return redirect("billing:page")
    return redirect(session.url)


@owner_required
@require_POST
def alert_settings(request):
    raw = (request.POST.get("low_balance_threshold") or "").strip()
    try:
        threshold = Decimal(raw) if raw else None
    except InvalidOperation:
        messages.error(request, "The threshold must be an amount, e.g. 10.00.")
        return redirect("billing:page")
    if threshold is not None and threshold < 0:
        messages.error(request, "The threshold cannot be negative.")
        return redirect("billing:page")
    services.credit_settings_update(organization_id=request.organization.pk, low_balance_threshold=threshold)
    messages.success(request, "Alert saved." if threshold is not None else "Low-balance alert turned off.")
    return redirect("billing:page")


@owner_required
@require_GET
def usage_export(request):
    today = timezone.now().date()
    start = _parse_date(request.GET.get("from"), today.replace(day=1))
    end = _parse_date(request.GET.get("to"), today)
    if start > end:
        start, end = end, start
    rows = selectors.usage_list(organization_id=request.organization.pk, start=start, end=end)
    return usage_csv(rows.select_related("reverses"), filename=f"usage-{start}-{end}.csv")


def _invoice(request, pk: int):
    try:
        return selectors.invoice_get(organization_id=request.organization.pk, invoice_id=pk)
    except ObjectDoesNotExist:
        raise Http404("No such invoice") from None


@owner_required
@require_GET
def invoice_page(request, pk: int):
    invoice = _invoice(request, pk)
    return render(request, "billing/invoice.html", {"invoice": invoice, "lines": invoice.lines.all()})


@owner_required
@require_GET
def invoice_export(request, pk: int):
    return invoice_csv(_invoice(request, pk))


@csrf_exempt
@require_POST
def stripe_webhook(request):
    """Stripe's calls, verified over the raw body with the endpoint's signing secret, applied once per
    event. A bad signature answers 400 (Stripe's documented answer; it retries any non-2xx)."""
    try:
        services.stripe_webhook_receive(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
    except WebhookVerificationError as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")
