import pytest
from openapi_spec_validator import validate
from rest_framework.test import APIClient

from tests.factories import ChannelFactory, UserFactory

from .conftest import error_of

V1_PATHS = {
    "/api/v1/channels/": {"get", "post"},
    "/api/v1/channels/{id}/": {"get", "patch", "delete"},
    "/api/v1/channels/{id}/test/": {"post"},
    "/api/v1/contacts/": {"get"},
    "/api/v1/contacts/{id}/": {"get"},
    "/api/v1/contacts/{id}/merge/": {"post"},
    "/api/v1/contacts/{id}/unmerge/": {"post"},
    "/api/v1/conversations/": {"get"},
    "/api/v1/conversations/{id}/": {"get", "patch"},
    "/api/v1/conversations/{id}/messages/": {"get", "post"},
    "/api/v1/messages/": {"post"},
    "/api/v1/messages/{id}/": {"get"},
    "/api/v1/messages/{id}/retry/": {"post"},
}


@pytest.mark.django_db
def test_no_credentials_answer_401_in_the_error_format():
    response = APIClient().get("/api/v1/channels/")
    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"


@pytest.mark.django_db
def test_bad_api_key_answers_401_in_the_error_format(org):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer alx_deadbeef_not-a-real-key")
    response = client.get("/api/v1/conversations/")
    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == "authentication_failed"
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.django_db
def test_session_login_of_a_member_works_and_is_scoped_to_its_organization(org, other_org, agent):
    ChannelFactory(organization=org, name="Ours")
    ChannelFactory(organization=other_org, name="Theirs")
    client = APIClient()
    client.force_login(agent)
    response = client.get("/api/v1/channels/")
    assert response.status_code == 200
    assert [c["name"] for c in response.json()["results"]] == ["Ours"]


@pytest.mark.django_db
def test_session_of_a_user_without_membership_is_refused(org):
    client = APIClient()
    client.force_login(UserFactory(username="stranger@example.com"))
    response = client.get("/api/v1/channels/")
    assert response.status_code in (401, 403)
    assert "error" in response.json()


@pytest.mark.django_db
def test_schema_is_valid_openapi_3_and_covers_every_v1_endpoint(api):
    response = api.get("/api/schema/?format=json")
    assert response.status_code == 200
    spec = response.json()
    validate(spec)
    assert spec["openapi"].startswith("3.")
    for path, methods in V1_PATHS.items():
        assert path in spec["paths"], path
        assert methods <= set(spec["paths"][path]), (path, set(spec["paths"][path]))
        for method in methods:
            responses = spec["paths"][path][method]["responses"]
            assert {"200", "201", "204"} & set(responses), (path, method)
            assert "401" in responses or path == "/api/v1/channels/{id}/test/" or "404" in responses, (path, method)
    schemes = spec["components"]["securitySchemes"]
    assert schemes["apiKeyAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["apiKeyAuth"]["description"],
    }
    message = spec["components"]["schemas"]["Message"]["properties"]
    assert {"id", "conversation", "direction", "private", "type", "text", "attachments", "status", "error"} <= set(
        message
    )
    channel_create = spec["components"]["schemas"]["ChannelCreateRequest"]["properties"]
    assert "credentials" in channel_create
    assert "credentials" not in spec["components"]["schemas"]["Channel"]["properties"]


def test_schema_generates_without_warnings():
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    SchemaGenerator().get_schema(request=None, public=True)
    assert not GENERATOR_STATS._warn_cache, GENERATOR_STATS._warn_cache
    assert not GENERATOR_STATS._error_cache, GENERATOR_STATS._error_cache
