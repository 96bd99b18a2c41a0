"""Choosing which of the assertion's roles to assume, and naming profiles for --all-roles.

Pure functions over `saml.Role` values; the only side effect is the `ask` callback the CLI
passes in for the interactive menu.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from awscli_saml_sso.aws.accounts import profile_name
from awscli_saml_sso.aws.saml import Role
from awscli_saml_sso.errors import NoRoleError, UsageError

#: Asks the person for a menu answer; returns the raw text they typed.
Ask = Callable[[str], str]

NO_ROLE = (
    "this identity has no AWS role: the identity provider sent no "
    "https://aws.amazon.com/SAML/Attributes/Role attribute for it; ask your administrator "
    "to grant you one"
)


@dataclass(frozen=True)
class Choice:
    """The role picked and how it was picked (for the message shown to the person)."""

    role: Role
    reason: str


def _available(roles: Sequence[Role]) -> str:
    return "; ".join(role.role_arn for role in roles)


def menu_text(roles: Sequence[Role], names: Mapping[str, str] | None = None) -> str:
    """The role menu with its question."""
    return "\n".join(
        ["Please choose the role you would like to assume:", *menu_lines(roles, names)]
    )


def account_label(account_id: str, names: Mapping[str, str] | None) -> str:
    """`123456789012 (prod)`, or the bare id when the account has no known name."""
    name = (names or {}).get(account_id)
    return f"{account_id} ({name})" if name else account_id


def menu_lines(roles: Sequence[Role], names: Mapping[str, str] | None = None) -> list[str]:
    """The numbered roles, grouped by account id in the IdP's order of first appearance.

    Each role keeps its index in the assertion, so the number shown is the one that
    `--role-selection N` takes on the next run.
    """
    by_account: dict[str, list[tuple[int, Role]]] = {}
    for index, role in enumerate(roles):
        by_account.setdefault(role.account_id, []).append((index, role))
    width = len(str(len(roles) - 1))
    lines: list[str] = []
    for account_id, members in by_account.items():
        lines.append(f"Account {account_label(account_id, names)}:")
        lines.extend(
            f"  [{index:>{width}}] {role.name}  ({role.role_arn})" for index, role in members
        )
    return lines


def match_answer(roles: Sequence[Role], answer: str) -> Role | None:
    """The role a menu answer designates: an index, a full role ARN or an unambiguous role name."""
    text = answer.strip()
    if text.isdigit():
        index = int(text)
        return roles[index] if index < len(roles) else None
    by_arn = [role for role in roles if role.role_arn == text]
    if by_arn:
        return by_arn[0]
    by_name = [role for role in roles if role.name == text]
    return by_name[0] if len(by_name) == 1 else None


def choose_role(
    roles: Sequence[Role],
    *,
    role_arn: str | None = None,
    selection: int | None = None,
    ask: Ask | None = None,
    names: Mapping[str, str] | None = None,
) -> Choice:
    """Pick one role: the only one, `--role-arn`, `--role-selection`, or the person's answer.

    `ask` is None under --no-prompt. Raises NoRoleError when there is no role or none
    matches, UsageError when the choice is ambiguous and nobody can be asked.
    """
    if not roles:
        raise NoRoleError(NO_ROLE)
    if role_arn is not None:
        for role in roles:
            if role.role_arn == role_arn.strip():
                return Choice(role, "requested with --role-arn")
        raise NoRoleError(
            f"the role {role_arn} is not among the roles this identity may assume "
            f"({_available(roles)})"
        )
    if selection is not None:
        if 0 <= selection < len(roles):
            return Choice(roles[selection], f"number {selection} from --role-selection")
        raise NoRoleError(
            f"--role-selection {selection} is out of range: this identity has {len(roles)} "
            f"role(s), numbered 0 to {len(roles) - 1}"
        )
    if len(roles) == 1:
        return Choice(roles[0], "the only role this identity has")
    if ask is None:
        raise UsageError(
            f"this identity has {len(roles)} roles and prompting is disabled; choose one with "
            f"--role-arn or --role-selection ({_available(roles)})"
        )
    prompt = menu_text(roles, names) + "\nSelection"
    while True:
        answered = match_answer(roles, ask(prompt))
        if answered is not None:
            return Choice(answered, "chosen from the menu")
        prompt = (
            f"Please answer with a number from 0 to {len(roles) - 1}, a role ARN or a role name"
        )


def all_role_profiles(
    roles: Sequence[Role],
    template: str | None = None,
    names: Mapping[str, str] | None = None,
) -> dict[str, Role]:
    """Profile names for --all-roles: the role name, or `<name>-<account id>` when names clash;
    with --profile-name-template, what the template gives (account names from `names`).

    Raises NoRoleError when there is no role, UsageError when the template gives two roles
    the same name.
    """
    if not roles:
        raise NoRoleError(NO_ROLE)
    if template:
        named: dict[str, Role] = {}
        for role in roles:
            name = profile_name(template, role, names or {})
            if name in named and named[name] != role:
                raise UsageError(
                    f"--profile-name-template gives {named[name].role_arn} and {role.role_arn} "
                    f"the same profile name {name!r}; add {{account_id}} or {{role_name}}"
                )
            named[name] = role
        return named
    accounts_per_name: dict[str, set[str]] = {}
    for role in roles:
        accounts_per_name.setdefault(role.name, set()).add(role.account_id)
    profiles: dict[str, Role] = {}
    for role in roles:
        clash = len(accounts_per_name[role.name]) > 1
        name = f"{role.name}-{role.account_id}" if clash else role.name
        profiles.setdefault(name, role)
    return profiles
