"""AWS CLI profiles that get their keys from this tool (credential_process)."""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Collection, Sequence
from pathlib import Path

from awscli_saml_sso.aws import config_files
from awscli_saml_sso.aws.chain import check_chain_options
from awscli_saml_sso.aws.saml import is_role_arn
from awscli_saml_sso.errors import UsageError


def tool_command() -> str:
    """How the AWS CLI should start this tool: the absolute path of the installed script.

    A bare name would depend on the PATH of whoever runs `aws` (often not our virtualenv).
    """
    found = shutil.which("awscli_saml_sso")
    script = Path(sys.argv[0])
    if script.stem == "awscli_saml_sso" and script.exists():  # `.exe` on Windows
        return str(script.resolve())
    return found or "awscli_saml_sso"


def command_line(words: Sequence[str], platform: str = sys.platform) -> str:
    """`words` as one `credential_process` line that botocore splits back into `words`.

    botocore splits that line with the Windows rules on Windows (backslashes stay, double
    quotes group; `shlex.join`'s single quotes would break a path with a space there) and
    with POSIX shell rules elsewhere.
    """
    if platform == "win32":
        import subprocess

        return subprocess.list2cmdline(words)
    return shlex.join(words)


def configure_credential_process(
    name: str,
    idp_nickname: str,
    role_arn: str,
    known_idps: Collection[str],
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    chain: tuple[str | None, str | None] = (None, None),
) -> Path:
    """Write `credential_process` (and region) for profile `name` into the AWS config file.

    `chain` is the (role ARN, external id) of a role assumed with the SAML role's keys.
    """
    if idp_nickname not in known_idps:
        raise UsageError(
            f"no identity provider is stored under the nickname {idp_nickname!r}; sign in with "
            "it once (or `awscli_saml_sso idp add NICKNAME URL`) first"
        )
    if not is_role_arn(role_arn):
        raise UsageError(f"{role_arn!r} is not an IAM role ARN")
    words = [tool_command(), "credential-process", "--idp-nickname", idp_nickname]
    words += ["--role-arn", role_arn]
    chain_role_arn, external_id = chain
    check_chain_options(chain_role_arn, external_id)
    if chain_role_arn:
        words += ["--chain-role-arn", chain_role_arn.strip()]
    if external_id:
        words += ["--external-id", external_id]
    if endpoint_url:
        words += ["--endpoint-url", endpoint_url]
    settings = {"credential_process": command_line(words)}
    if region:
        settings["region"] = region
    path = config_files.config_file()
    config_files.write_config(path, name, settings)
    return path
