"""One error hierarchy for the whole tool; each class carries the exit code the CLI returns.

Every failure a user can cause or meet ends as one of these with a sentence they can act on.
Third-party exceptions (botocore, selenium, XML parsers, OS errors) are wrapped at the edge
of the module that calls the library, never further up.
"""

from __future__ import annotations

import sys

from awscli_saml_sso.text import printable


class AssError(Exception):
    """Base class: a failure that ends the run with one sentence and a non-zero exit code.

    Not tied to click: the console script's quick path and the lower layers raise and test
    these without loading the command line; `cli.main` shows them.
    """

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def format_message(self) -> str:
        return self.message

    def show(self) -> None:
        """Print `Error: <message>` on stderr; the message may quote an IdP page, so no
        escape sequence reaches the terminal."""
        if sys.stderr is not None:  # pythonw has no stderr
            print(f"Error: {printable(self.message)}", file=sys.stderr, flush=True)


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
