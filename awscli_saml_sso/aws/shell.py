"""Temporary keys as environment variables: a child's environment (`exec`), shell lines (`env`)."""

from __future__ import annotations

from collections.abc import Mapping

from awscli_saml_sso.model import Keys

SHELLS = ("bash", "zsh", "fish", "powershell")
#: Variables that would make an AWS SDK prefer a profile over the keys we hand over.
REMOVED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")


def variables(keys: Keys, region: str) -> dict[str, str]:
    """The variables an AWS SDK or CLI reads for temporary keys and region."""
    document = keys.process_json()
    return {
        "AWS_ACCESS_KEY_ID": keys.access_key_id,
        "AWS_SECRET_ACCESS_KEY": keys.secret_access_key,
        "AWS_SESSION_TOKEN": keys.session_token,
        "AWS_SECURITY_TOKEN": keys.session_token,
        "AWS_CREDENTIAL_EXPIRATION": str(document["Expiration"]),
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }


def child_environment(base: Mapping[str, str], values: Mapping[str, str]) -> dict[str, str]:
    """`base` with our variables set and the profile selectors removed."""
    child = {name: value for name, value in base.items() if name not in REMOVED}
    child.update(values)
    return child


def _single_quoted(value: str) -> str:
    """POSIX-shell single quoting: safe for any value."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


def render(values: Mapping[str, str], shell: str) -> str:
    """Lines that set `values` and unset the profile selectors in `shell`."""
    if shell in ("bash", "zsh"):
        lines = [f"export {name}={_single_quoted(value)}" for name, value in values.items()]
        lines.append("unset " + " ".join(REMOVED))
    elif shell == "fish":
        lines = [
            f"set -gx {name} '" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
            for name, value in values.items()
        ]
        # `set -e` fails for a variable that is not set; that must not fail the caller's `and`.
        lines.extend(f"set -e {name}; or true" for name in REMOVED)
    elif shell == "powershell":
        lines = [
            f"$Env:{name} = '" + value.replace("'", "''") + "'" for name, value in values.items()
        ]
        lines.extend(f"Remove-Item Env:{name} -ErrorAction SilentlyContinue" for name in REMOVED)
    else:
        raise ValueError(f"unknown shell {shell!r}")
    return "\n".join(lines) + "\n"
