"""Domain refusals of the inbox, with stable codes the API and the agent UI show as they are."""


class InboxError(Exception):
    status_code = 422

    def __init__(self, code: str, message: str, *, status_code: int | None = None, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        if status_code is not None:
            self.status_code = status_code


class MessageNotYetKnown(Exception):
    """A status arrived for a platform id we have not stored yet (the send's commit is in flight)."""


class RetryLater(Exception):
    """Ask the task to run again after `countdown` seconds."""

    def __init__(self, countdown: float, reason: str = "") -> None:
        super().__init__(reason or f"retry in {countdown:.1f}s")
        self.countdown = countdown
