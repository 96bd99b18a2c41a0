"""Unit tests for choosing roles and naming --all-roles profiles (pure code)."""

from __future__ import annotations

import pytest

from awscli_saml_sso.aws.roles import all_role_profiles, choose_role, match_answer, menu_text
from awscli_saml_sso.aws.saml import Role
from awscli_saml_sso.errors import NoRoleError, UsageError


def role(account: str, name: str) -> Role:
    return Role(f"arn:aws:iam::{account}:role/{name}", f"arn:aws:iam::{account}:saml-provider/Idp")


USER = role("000000000000", "Role.User")
ADMIN = role("000000000000", "Role.Admin")
OTHER_ADMIN = role("111111111111", "Role.Admin")
ROLES = (USER, ADMIN, OTHER_ADMIN)


def test_single_role_is_taken_and_said() -> None:
    choice = choose_role((USER,))
    assert choice.role == USER
    assert "only role" in choice.reason


def test_no_role_is_its_own_error() -> None:
    with pytest.raises(NoRoleError, match="this identity has no AWS role") as info:
        choose_role(())
    assert info.value.exit_code == 5


def test_role_arn_exact_match_and_listing_on_miss() -> None:
    assert choose_role(ROLES, role_arn=f" {ADMIN.role_arn} ").role == ADMIN
    with pytest.raises(NoRoleError) as info:
        choose_role(ROLES, role_arn="arn:aws:iam::000000000000:role/Nope")
    assert USER.role_arn in info.value.message and OTHER_ADMIN.role_arn in info.value.message


def test_role_selection_index_and_range_error() -> None:
    assert choose_role(ROLES, selection=2).role == OTHER_ADMIN
    with pytest.raises(NoRoleError, match="numbered 0 to 2"):
        choose_role(ROLES, selection=3)


def test_ambiguous_without_prompt_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--role-arn or --role-selection"):
        choose_role(ROLES, ask=None)


def test_menu_asks_again_until_valid() -> None:
    answers = iter(["7", "banana", "Role.Admin", "1"])  # name is ambiguous across accounts
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    choice = choose_role(ROLES, ask=ask)
    assert choice.role == ADMIN
    assert len(prompts) == 4
    assert "Account 000000000000:" in prompts[0] and "Account 111111111111:" in prompts[0]


def test_menu_numbers_match_role_selection_indices() -> None:
    roles = (USER, OTHER_ADMIN, ADMIN)  # account 0 appears again after account 1
    text = menu_text(roles)
    block_0 = text.split("Account 000000000000:")[1].split("Account 111111111111:")[0]
    assert "[0] Role.User" in block_0 and "[2] Role.Admin" in block_0
    assert match_answer(roles, "2") == ADMIN
    assert match_answer(roles, OTHER_ADMIN.role_arn) == OTHER_ADMIN
    assert match_answer(roles, "Role.User") == USER


def test_all_roles_profile_names_disambiguate_by_account() -> None:
    profiles = all_role_profiles(ROLES)
    assert profiles == {
        "Role.User": USER,
        "Role.Admin-000000000000": ADMIN,
        "Role.Admin-111111111111": OTHER_ADMIN,
    }
    with pytest.raises(NoRoleError):
        all_role_profiles(())
