"""The API's one error shape: {"error": {"code", "message", "details"}} (CONTRACT.md)."""

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ApiError(exceptions.APIException):
    """A domain refusal with a stable code, e.g. ApiError("window_closed", "...", status=422)."""

    def __init__(self, code: str, message: str, *, status_code: int = 400, details: dict | None = None):
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code
        self.details = details or {}


_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.ParseError: "malformed_request",
    exceptions.ValidationError: "invalid",
    exceptions.Throttled: "throttled",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.NotAcceptable: "not_acceptable",
}


def exception_handler(exc, context):
    from billing.errors import BillingError
    from inbox.errors import InboxError

    if isinstance(exc, (InboxError, BillingError)):
        # Domain refusals raised outside ApiView (e.g. billing's API views) keep their code and status.
        exc = ApiError(exc.code, exc.message, status_code=exc.status_code, details=exc.details)
    if isinstance(exc, (Http404, ObjectDoesNotExist)):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ApiError):
        code, message, details = exc.error_code, str(exc.detail), exc.details
    elif isinstance(exc, exceptions.ValidationError):
        code, message, details = "invalid", "The request is not valid.", exc.detail
        if isinstance(details, list):
            details = {"non_field_errors": details}
    else:
        code = _CODES.get(type(exc), getattr(exc, "default_code", "error"))
        detail = getattr(exc, "detail", "")
        message, details = (str(detail) if not isinstance(detail, (dict, list)) else "error"), {}
    if response.status_code == status.HTTP_403_FORBIDDEN and isinstance(exc, exceptions.NotAuthenticated):
        response.status_code = status.HTTP_401_UNAUTHORIZED
    response.data = {"error": {"code": code, "message": message, "details": details}}
    return response


def error_response(code: str, message: str, *, status_code: int, details: dict | None = None) -> Response:
    return Response({"error": {"code": code, "message": message, "details": details or {}}}, status=status_code)
