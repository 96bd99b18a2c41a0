"""Temporary AWS credentials through a SAML identity provider, signed in with a real browser."""

__version__ = "1.0.0.dev0"
