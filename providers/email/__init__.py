"""The e-mail channel (kind `email`) over django-anymail, SMTP and IMAP. See docs/channels/email.md."""

from .provider import EmailProvider

__all__ = ["EmailProvider"]
