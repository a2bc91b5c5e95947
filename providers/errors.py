"""Typed provider errors. Tasks turn them into retries (TransientFailure) or a failed message."""


class ProviderError(Exception):
    """Base of every error a provider raises."""


class WebhookVerificationError(ProviderError):
    """Signature or secret missing or wrong: answer 401/403, store nothing."""


class MalformedPayloadError(ProviderError):
    """The body does not parse as the platform's format: answer 400 with this reason."""


class TransientFailure(ProviderError):
    """5xx, timeout, connection error: retry with backoff."""

    def __init__(self, reason: str = "transient failure", code: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class AmbiguousFailure(TransientFailure):
    """The request may have reached the platform (read timeout, connection dropped after sending).

    Never retried blindly: the message stays `sending` and the sweeper resolves it (lookup where the
    platform has one, else `failed` with code send_unconfirmed), so nothing is sent twice.
    """


class RateLimited(TransientFailure):
    def __init__(self, retry_after: float | None = None, code: str = "rate_limited", reason: str = "") -> None:
        super().__init__(reason or f"rate limited, retry after {retry_after}s", code=code)
        self.retry_after = retry_after


class PermanentFailure(ProviderError):
    """The platform refused for good (closed window, blocked user, invalid number): mark failed."""

    def __init__(self, code: str, reason: str, *, channel_error: bool = False) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = str(code)
        self.reason = reason
        # True when the channel itself is broken (expired or revoked token, Meta code 190): the
        # pipeline then marks the channel `error` with this reason so the admin sees it.
        self.channel_error = channel_error


class ConfigurationError(ProviderError):
    """The channel is misconfigured (missing key, bad token): surfaced to the admin."""
