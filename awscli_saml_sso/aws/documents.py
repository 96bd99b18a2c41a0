"""The JSON documents `--json` prints for scripts (README "JSON output" shows each shape)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from awscli_saml_sso.aws import config_files
from awscli_saml_sso.aws.saml import Role
from awscli_saml_sso.aws.validity import EXPIRES_KEY, ROLE_KEY
from awscli_saml_sso.errors import LocalFileError


def role_documents(
    roles: Sequence[Role], names: Mapping[str, str] | None = None
) -> list[dict[str, object]]:
    """`roles --json`: one object per role, `index` being what --role-selection takes."""
    return [
        {
            "index": index,
            "role_arn": role.role_arn,
            "role_name": role.name,
            "account_id": role.account_id,
            "account_name": (names or {}).get(role.account_id),
            "principal_arn": role.principal_arn,
        }
        for index, role in enumerate(roles)
    ]


def signin_document(
    path: Path,
    profiles: Iterable[str],
    *,
    skipped: bool,
    names: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """A sign-in's outcome: each written (or kept) profile with its role, account and expiry,
    as the credentials file now holds them. Raises LocalFileError if it cannot be read.
    """
    rows: list[dict[str, object]] = []
    for name in profiles:
        section: Mapping[str, str] = config_files.read_profile(path, name) or {}
        if EXPIRES_KEY not in section:
            raise LocalFileError(f"the {name} profile in {path} lacks the keys this tool writes")
        role_arn = section.get(ROLE_KEY, "")
        account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else None
        rows.append(
            {
                "profile": name,
                "role_arn": role_arn,
                "account_id": account,
                "account_name": (names or {}).get(account or ""),
                "expiration": section[EXPIRES_KEY],
            }
        )
    return {"skipped": skipped, "credentials_file": str(path), "profiles": rows}
