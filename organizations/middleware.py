from .selectors import membership_get, organization_list_for_user

SESSION_KEY = "organization_id"


class CurrentOrganizationMiddleware:
    """Sets request.organization and request.membership for a logged-in user.

    The organization is the one chosen in the session (see the switch view), else the user's first.
    A session pointing at an organization the user no longer belongs to falls back to the first.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.organization = None
        request.membership = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            membership = membership_get(user=user, organization_id=request.session.get(SESSION_KEY))
            if membership is None:
                first = organization_list_for_user(user=user).first()
                membership = membership_get(user=user, organization_id=first.pk) if first else None
                if membership is not None:
                    request.session[SESSION_KEY] = membership.organization_id
            if membership is not None:
                request.membership = membership
                request.organization = membership.organization
        return self.get_response(request)
