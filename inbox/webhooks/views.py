def webhook_view(request, kind, token, endpoint="inbound"):
    raise NotImplementedError
