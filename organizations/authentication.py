"""REST API authentication: organization API keys (Bearer) or a logged-in session."""

from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions, permissions

from .models import ApiKey
from .services import api_key_authenticate


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if parts[0] != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: expected 'Bearer <key>'.")
        key = api_key_authenticate(raw_key=parts[1])
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        request._request.organization = key.organization
        request._request.membership = None
        return (AnonymousUser(), key)

    def authenticate_header(self, request):
        return self.keyword


class OrganizationSessionAuthentication(authentication.SessionAuthentication):
    """Session auth (with CSRF); the organization is the session's current one (middleware)."""


class IsOrganizationMember(permissions.BasePermission):
    message = "Authentication with an organization API key or a member's session is required."

    def has_permission(self, request, view):
        if isinstance(request.auth, ApiKey):
            return True
        return bool(request.user and request.user.is_authenticated and getattr(request, "organization", None))
