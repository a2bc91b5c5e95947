import pytest

from billing.models import CreditAccount

pytestmark = pytest.mark.django_db


def test_out_of_credit_banner_is_shown_on_inbox_pages(client, org, owner):
    from billing.selectors import billing_banner

    client.force_login(owner)
    assert "billing-banner" not in client.get("/").content.decode()
    CreditAccount.objects.update_or_create(organization=org, defaults={"low_balance_alerted": True})
    banner = billing_banner(organization_id=org.pk)
    assert banner is not None and banner["code"] == "low_balance"
    html = client.get("/").content.decode()
    assert 'data-code="low_balance"' in html
