"""OpenAPI descriptions of our authentication classes (drf-spectacular extensions).

Imported from inbox.api.urls so the extensions are registered before the schema is generated.
"""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "organizations.authentication.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema):
        scheme = build_bearer_security_scheme_object(header_name="Authorization", token_prefix=self.target.keyword)
        scheme["description"] = "An organization API key: `Authorization: Bearer alx_...`."
        return scheme


class OrganizationSessionScheme(OpenApiAuthenticationExtension):
    """A logged-in member's session (the agent UI); unsafe methods need the CSRF token."""

    target_class = "organizations.authentication.OrganizationSessionAuthentication"
    name = "sessionAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
