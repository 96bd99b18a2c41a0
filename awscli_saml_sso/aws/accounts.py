"""Account names beside account ids: the ones the person sets, and IAM account aliases.

Stored in `accounts.json` in the tool's directory (0600)::

    {"names": {"123456789012": "prod"}, "aliases": {"123456789012": "acme-prod"}}

`names` are set with `accounts set`; `aliases` are a cache of iam:ListAccountAliases, asked
(with `--discover-account-names`) with the keys of one role per account. A name the person
set wins over an alias.
"""

from __future__ import annotations

import json
import logging
import os
import re
import string
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from awscli_saml_sso.aws.saml import Role
from awscli_saml_sso.errors import AssError, LocalFileError, UsageError
from awscli_saml_sso.files import atomic_write, ensure_private_dir, locked
from awscli_saml_sso.model import Keys

log = logging.getLogger(__name__)

ACCOUNT_ID = re.compile(r"\d{12}")
#: Printable names only: they reach the terminal and profile names.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@+=-]{0,62}")
TEMPLATE_FIELDS = ("account_id", "account_name", "role_name")


# The file ------------------------------------------------------------------------------------
def _read(path: Path) -> dict[str, dict[str, str]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"names": {}, "aliases": {}}
    except (OSError, ValueError) as exc:
        raise LocalFileError(f"cannot read the account names in {path}: {exc}") from exc
    if not isinstance(document, dict):
        raise LocalFileError(f"{path} does not hold account names")
    return {
        part: {
            str(key): str(value)
            for key, value in (document.get(part) or {}).items()
            if ACCOUNT_ID.fullmatch(str(key)) and NAME.fullmatch(str(value))
        }
        for part in ("names", "aliases")
    }


def _update(path: Path, change: Callable[[dict[str, dict[str, str]]], None]) -> None:
    ensure_private_dir(path.parent)
    with locked(path):
        document = _read(path)
        change(document)
        atomic_write(path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode())


def known_names(path: Path) -> dict[str, str]:
    """Account id -> name: the aliases found, overridden by the names the person set."""
    document = _read(path)
    return {**document["aliases"], **document["names"]}


def listing(path: Path) -> list[dict[str, str]]:
    """Every known account with its name and where the name comes from (`accounts list`)."""
    document = _read(path)
    rows = {
        key: {"account_id": key, "name": v, "source": "alias"}
        for key, v in document["aliases"].items()
    }
    rows.update(
        {
            key: {"account_id": key, "name": v, "source": "set"}
            for key, v in document["names"].items()
        }
    )
    return [rows[key] for key in sorted(rows)]


def check_account(account_id: str) -> str:
    if not ACCOUNT_ID.fullmatch(account_id.strip()):
        raise UsageError(f"{account_id!r} is not a 12-digit AWS account id")
    return account_id.strip()


def set_name(path: Path, account_id: str, name: str) -> None:
    """Remember `name` for the account. Raises UsageError for a bad id or name."""
    account_id = check_account(account_id)
    if not NAME.fullmatch(name.strip()):
        raise UsageError(
            f"{name!r} is not a usable account name: 1 to 63 letters, digits, spaces or ._@+=- "
            "starting with a letter or digit"
        )
    _update(path, lambda document: document["names"].__setitem__(account_id, name.strip()))


def remove_name(path: Path, account_id: str) -> bool:
    """Forget the name set for the account (and its cached alias); False if none was known."""
    account_id = check_account(account_id)
    found = account_id in known_names(path)

    def change(document: dict[str, dict[str, str]]) -> None:
        document["names"].pop(account_id, None)
        document["aliases"].pop(account_id, None)

    _update(path, change)
    return found


# Discovery -----------------------------------------------------------------------------------
def list_alias(keys: Keys, region: str) -> str | None:
    """The account's IAM alias, with `keys`; None when it has none or IAM says no.

    IAM's endpoint is the SDK's own choice (AWS_ENDPOINT_URL_IAM or AWS_ENDPOINT_URL when
    set): --endpoint-url names an STS endpoint, which need not answer IAM.
    """
    import boto3.session
    import botocore.session
    from botocore.config import Config
    from botocore.configprovider import ConstantProvider
    from botocore.exceptions import BotoCoreError, ClientError

    core = botocore.session.Session()
    store = core.get_component("config_store")
    for setting, value in (("profile", None), ("config_file", os.devnull)):
        store.set_config_provider(setting, ConstantProvider(value))
    store.set_config_provider("credentials_file", ConstantProvider(os.devnull))
    client: Any = boto3.session.Session(botocore_session=core).client(
        "iam",
        region_name=region,  # IAM is global; the partition's region reaches it
        config=Config(connect_timeout=10, read_timeout=20, retries={"max_attempts": 2}),
        aws_access_key_id=keys.access_key_id,
        aws_secret_access_key=keys.secret_access_key,
        aws_session_token=keys.session_token,
    )
    try:
        aliases = client.list_account_aliases().get("AccountAliases") or []
    except (BotoCoreError, ClientError) as exc:
        log.info("iam:ListAccountAliases failed: %s", exc)
        return None
    alias = str(aliases[0]) if aliases else None
    return alias if alias and NAME.fullmatch(alias) else None


def discover(
    path: Path,
    roles: Sequence[Role],
    keys_for: Callable[[Role], Keys],
    alias_of: Callable[[Keys], str | None],
    notify: Callable[[str], None],
) -> dict[str, str]:
    """Known names, after asking IAM for the alias of each account not asked before.

    One role per account is assumed (`keys_for`) to ask (`alias_of`); what was found is
    cached, so later runs ask no more. A failure for one account is a note, not an error.
    """
    cached = _read(path)
    found: dict[str, str] = {}
    for account_id, role in _one_role_per_account(roles).items():
        if account_id in cached["aliases"] or account_id in cached["names"]:
            continue
        try:
            alias = alias_of(keys_for(role))
        except AssError as exc:
            notify(f"could not look up the name of account {account_id}: {exc.message}")
            continue
        if alias:
            found[account_id] = alias
    if found:
        _update(path, lambda document: document["aliases"].update(found))
    return known_names(path)


def _one_role_per_account(roles: Sequence[Role]) -> dict[str, Role]:
    chosen: dict[str, Role] = {}
    for role in roles:
        chosen.setdefault(role.account_id, role)
    return chosen


# Profile names for --all-roles -----------------------------------------------------------------
def check_template(template: str) -> str:
    """Raise UsageError unless `template` uses only {account_id}, {account_name}, {role_name}."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise UsageError(f"--profile-name-template {template!r} is malformed: {exc}") from exc
    fields = [field for _, field, _, _ in parsed if field is not None]
    if not fields:
        raise UsageError("--profile-name-template must use {role_name} or another field")
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in TEMPLATE_FIELDS or spec or conversion:
            raise UsageError(
                f"--profile-name-template may only use {{account_id}}, {{account_name}} and "
                f"{{role_name}} (found {{{field}}})"
            )
    return template


def profile_name(template: str, role: Role, names: Mapping[str, str]) -> str:
    """The profile name a template gives a role (the account id when the account has no name)."""
    name = names.get(role.account_id, role.account_id)
    return template.format(
        account_id=role.account_id,
        account_name=re.sub(r"\s+", "-", name),
        role_name=role.name,
    )
