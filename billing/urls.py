"""Billing pages for owners and the Stripe webhook, mounted at /billing/."""

from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("", views.billing_page, name="page"),
    path("buy/", views.buy_credits, name="buy"),
    path("alert/", views.alert_settings, name="alert"),
    path("usage.csv", views.usage_export, name="usage-export"),
    path("invoices/<int:pk>/", views.invoice_page, name="invoice"),
    path("invoices/<int:pk>.csv", views.invoice_export, name="invoice-export"),
    path("stripe/webhook/", views.stripe_webhook, name="stripe-webhook"),
]
