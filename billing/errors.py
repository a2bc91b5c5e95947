"""Billing refusals, with the same shape as inbox.errors.InboxError (code, message, status_code,
details) so the API and the agent UI show them as they are."""


class BillingError(Exception):
    code = "billing_error"
    status_code = 422

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None, details=None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code


class InsufficientCredits(BillingError):
    """The balance (less what is held for sends in flight) cannot cover the cost within the overdraft."""

    code = "insufficient_credits"
    status_code = 402


class QuotaExceeded(BillingError):
    code = "quota_exceeded"
    status_code = 403


class CheckoutError(BillingError):
    """Stripe refused or could not be reached while creating a checkout session."""

    code = "checkout_failed"
    status_code = 502


class WebhookVerificationError(BillingError):
    code = "invalid_signature"
    status_code = 400
