import pytest

pytestmark = pytest.mark.django_db


def test_api_docs_page_serves_its_own_javascript(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/redoc/" in html
    assert "cdn" not in html.lower()
    assert client.get("/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js").status_code == 200
