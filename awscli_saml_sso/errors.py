"""One error hierarchy for the whole tool; each class carries the exit code the CLI returns.

Every failure a user can cause or meet ends as one of these with a sentence they can act on.
Third-party exceptions (botocore, selenium, XML parsers, OS errors) are wrapped at the edge
of the module that calls the library, never further up.
"""

from __future__ import annotations

import click

from awscli_saml_sso.text import printable


class AssError(click.ClickException):
    """Base class: a failure that ends the run with one sentence and a non-zero exit code."""

    exit_code = 1

    def show(self, file: object = None) -> None:  # pragma: no cover - thin override
        # The message may quote an IdP page: no escape sequence reaches the terminal.
        click.echo(f"Error: {printable(self.format_message())}", err=True)


class UsageError(AssError):
    """Bad input from the command line, environment or a prompt answer (exit 2)."""

    exit_code = 2


class NeedsPerson(UsageError):
    """An answer only a person can give is needed, but nobody can be asked (exit 2)."""


class SignInError(AssError):
    """Sign-in failed at the identity provider: wrong password, timeout, browser closed (exit 3)."""

    exit_code = 3


class WrongPassword(SignInError):
    """The identity provider refused the password (exit 3): never retried automatically."""


class SamlError(AssError):
    """The SAMLResponse is malformed, hostile, unsuccessful or expired (exit 4)."""

    exit_code = 4


class NoRoleError(AssError):
    """The assertion grants no role, or none that matches the request (exit 5)."""

    exit_code = 5


class StsError(AssError):
    """STS refused the assertion or could not be reached (exit 6)."""

    exit_code = 6


class LocalFileError(AssError):
    """A local file is unreadable, corrupt or locked by someone else for too long (exit 7)."""

    exit_code = 7


class Interrupted(AssError):
    """The user pressed Ctrl-C; everything was cleaned up (exit 130)."""

    exit_code = 130
