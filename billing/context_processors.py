from .selectors import billing_banner


def banner(request):
    """The out-of-credit / low-balance banner shown on every page of a logged-in member."""
    organization = getattr(request, "organization", None)
    if organization is None:
        return {}
    return {"billing_banner": billing_banner(organization_id=organization.pk)}
