"""Inbox writes. Each module owns its transactions; side effects are queued with on_commit."""
