"""Billing routes of REST API v1, mounted at /api/v1/ next to inbox.api.urls."""

from django.urls import path

from . import api

urlpatterns = [
    path("usage/", api.UsageView.as_view(), name="api-usage"),
    path("usage/export.csv", api.UsageExportView.as_view(), name="api-usage-export"),
    path("credits/", api.CreditsView.as_view(), name="api-credits"),
    path("credits/checkout/", api.CheckoutView.as_view(), name="api-credits-checkout"),
    path("invoices/", api.InvoiceListView.as_view(), name="api-invoices"),
    path("invoices/<int:pk>/", api.InvoiceDetailView.as_view(), name="api-invoice"),
    path("invoices/<int:pk>/export.csv", api.InvoiceExportView.as_view(), name="api-invoice-export"),
]
