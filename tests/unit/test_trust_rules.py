"""What the tool refuses to trust, in pure code and through the CLI process (issue 10):
terminal text, secrets in repr, keyring back ends, input limits, modes and owners, stale
keys and origins of a sign-in. The browser, keyring and Keycloak halves live in
tests/browser/test_trust_browser.py and tests/e2e/test_trust_e2e.py.
"""

from __future__ import annotations

import importlib
import json
import os
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from support.sandbox import Sandbox

from awscli_saml_sso import flow, keys, paths
from awscli_saml_sso.browser.autofill import _Run
from awscli_saml_sso.browser.profile import clear_profile, locked_profile
from awscli_saml_sso.errors import AssError, LocalFileError, SamlError, SignInError, WrongPassword
from awscli_saml_sso.idp.passwords import os_keyring
from awscli_saml_sso.idp.prompter import TerminalPrompter
from awscli_saml_sso.idp.store import Settings
from awscli_saml_sso.model import IdentityProvider, Keys, RunOptions, origin_of
from awscli_saml_sso.text import printable

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
PASSWORD = "Tr0ub4dor&3-unique"


@dataclass
class ScriptedUi:
    """The core's Ui with fixed answers (the terminal half is ClickUi's, tested elsewhere)."""

    interactive: bool = True
    answers: list[str] = field(default_factory=list)
    confirms: list[bool] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)

    def ask(self, prompt: str, *, default: str | None = None, hide: bool = False) -> str:
        self.shown.append(prompt)
        return self.answers.pop(0)

    def confirm(self, prompt: str) -> bool:
        self.shown.append(prompt)
        return self.confirms.pop(0)

    def info(self, message: str) -> None:
        self.shown.append(message)

    def warn(self, message: str) -> None:
        self.shown.append(message)

    def result(self, message: str) -> None:
        self.shown.append(message)


def soon(seconds: int = 3600) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


# -- item 6: one cleaning of outside text -----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Bad \x1b]0;pwned\x07password\x1b[2J\x1bc!", "Bad password!"),
        ("link \x1b]8;;http://evil\x1b\\here\x1b]8;;\x1b\\", "link here"),
        ("a\u202eevil\u202c b\u2066c\u2069", "aevil bc"),
        ("red\x9b31m C1\x9d0;t\x9c ok\x00\x7f\r", "red C1 ok"),
        ("lines\nand\ttabs stay", "lines\nand\ttabs stay"),
        ("Ünïcödé, ok", "Ünïcödé, ok"),
    ],
)
def test_printable_strips_escapes_controls_and_bidi(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_error_messages_reach_the_terminal_cleaned(sandbox: Sandbox) -> None:
    # A nickname is echoed in the error sentence: it must arrive without its escapes.
    result = sandbox.run(["--idp-nickname", "x\x1b]0;owned\x07y", "--no-prompt"])
    assert result.returncode == 2
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "x]0;owned" not in result.stderr


# -- item 9: secrets never in repr ------------------------------------------------------------


def test_no_secret_in_any_repr() -> None:
    opts = RunOptions(mfa_code="123456", env={"ASS_PASSWORD": PASSWORD, "ASS_MFA_CODE": "654321"})
    ui = ScriptedUi(answers=[PASSWORD, PASSWORD])
    prompter = TerminalPrompter(opts, IdentityProvider("corp", "https://idp.example.com/"), ui)
    prompter.chosen_username = "alice"
    assert prompter.password() == PASSWORD  # from ASS_PASSWORD
    prompter.opts = RunOptions()
    assert prompter.password() == PASSWORD  # typed
    run = _Run(prompter)
    run.password = run.get_password()
    run.pending_code = "123456"
    for value in (opts, prompter, run):
        text = repr(value)
        assert PASSWORD not in text and "123456" not in text and "654321" not in text, text


# -- item 7: only OS keyrings count -----------------------------------------------------------


def backend(module: str, name: str) -> Any:
    """An instance of one of keyring's (or keyrings.alt's) back end classes."""
    return getattr(importlib.import_module(module), name)()


def test_only_os_keyring_back_ends_count(sandbox: Sandbox) -> None:
    for refused in (
        backend("keyrings.alt.file", "PlaintextKeyring"),
        backend("keyring.backends.null", "Keyring"),
        backend("keyring.backends.fail", "Keyring"),
    ):
        assert os_keyring(refused) is None, refused
    # With keyrings.alt installed beside a real Secret Service, keyring picks a chainer that
    # also reads the plaintext file: only its OS member is used.
    code = (
        "import keyring\n"
        "from awscli_saml_sso.idp.passwords import os_keyring\n"
        "chosen = keyring.get_keyring()\n"
        "print(type(chosen).__module__, *(type(b).__module__ for b in chosen.backends))\n"
        "print(type(os_keyring(chosen)).__module__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=sandbox.env, capture_output=True, text=True, timeout=60
    )
    chain, used = done.stdout.splitlines()
    assert chain.split()[0] == "keyring.backends.chainer" and "keyrings.alt.file" in chain
    assert used == "keyring.backends.SecretService"


# -- item 10: limits before reading -----------------------------------------------------------


def test_endless_saml_response_file_is_refused_at_its_limit(sandbox: Sandbox) -> None:
    result = sandbox.run(["--saml-response-file", "/dev/zero", "--no-prompt"], timeout=60)
    assert result.returncode == 4, result.stderr
    assert "The SAML response is too large (the limit is 2 MiB" in result.stderr
    assert "Traceback" not in result.stderr


def test_endless_stdin_is_refused_at_its_limit() -> None:
    code = "from awscli_saml_sso.flow import read_saml_response_file as r; r('-')"
    with Path("/dev/zero").open("rb") as zero:
        done = subprocess.run(
            [sys.executable, "-c", code], stdin=zero, capture_output=True, text=True, timeout=60
        )
    assert "SamlError" in done.stderr and "too large" in done.stderr


# -- item 11: modes and owners ----------------------------------------------------------------


def test_open_modes_of_our_files_are_fixed_with_a_warning(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.config_dir.mkdir(mode=0o755)
    sandbox.config_dir.chmod(0o755)
    idps = sandbox.config_dir / "idps.json"
    idps.write_text("[]")
    idps.chmod(0o644)
    sandbox.credentials_file.parent.mkdir(mode=0o700)
    sandbox.credentials_file.write_text("[other]\nregion = x\n")
    sandbox.credentials_file.chmod(0o644)
    bad = tmp_path / "bad.xml"
    bad.write_text("not saml")
    result = sandbox.run(["--saml-response-file", str(bad), "--no-prompt"])
    assert result.returncode == 4  # the bad assertion, after the checks
    assert f"The tool's directory {sandbox.config_dir} was open to other users (mode 0755)" in (
        result.stderr
    )
    assert "The tool's idps.json" in result.stderr
    assert "The AWS credentials file" in result.stderr
    assert stat.S_IMODE(sandbox.config_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(idps.stat().st_mode) == 0o600
    assert stat.S_IMODE(sandbox.credentials_file.stat().st_mode) == 0o600
    again = sandbox.run(["--saml-response-file", str(bad), "--no-prompt"])
    assert "Warning" not in again.stderr


@pytest.mark.skipif(not ROOT, reason="only root can give a directory to someone else")
def test_a_tool_directory_of_another_user_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.config_dir.mkdir(mode=0o700)
    os.chown(sandbox.config_dir, 65534, 65534)
    bad = tmp_path / "bad.xml"
    bad.write_text("not saml")
    result = sandbox.run(["--saml-response-file", str(bad), "--no-prompt"])
    assert result.returncode == 7
    assert f"The tool's directory {sandbox.config_dir} belongs to another user (uid 65534)" in (
        result.stderr
    )


# -- item 1: idps.json is checked on load -----------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"nickname": "corp", "url": "javascript:alert(1)"}, "is not an http\\(s\\) URL"),
        ({"nickname": "corp", "url": "http://idp.example.com/"}, "plain http"),
        ({"nickname": "../x", "url": "https://idp.example.com/"}, "is not valid"),
        (
            {"nickname": "corp", "url": "https://a.example/", "origins": ["http://evil.example"]},
            "plain http",
        ),
        (
            {"nickname": "corp", "url": "https://a.example/", "origins": ["https://b/x"]},
            "is not a web origin",
        ),
        ({"nickname": "corp", "url": "https://a.example/", "password": "x"}, "unknown field"),
    ],
)
def test_an_edited_idps_file_is_checked_on_load(
    tmp_path: Path, entry: dict[str, object], reason: str
) -> None:
    settings = Settings(tmp_path)
    settings.idps_file.write_text(json.dumps([entry]))
    with pytest.raises(LocalFileError, match=reason):
        settings.load_idps()


def test_approved_origins_are_kept_per_idp_and_reset_with_a_new_url(tmp_path: Path) -> None:
    settings = Settings(tmp_path)
    settings.save_idp(IdentityProvider("corp", "https://idp.example.com/sso"))
    settings.save_idp(
        IdentityProvider("corp", "https://idp.example.com/sso", origins=("https://mfa.example",))
    )
    stored = settings.load_idps()["corp"]
    assert stored.approved_origins == {"https://idp.example.com", "https://mfa.example"}
    settings.save_idp(IdentityProvider("corp", "https://other.example.com/sso"))
    assert settings.load_idps()["corp"].origins == ()


def test_the_terminal_prompter_asks_once_per_origin_and_never_under_no_prompt() -> None:
    idp = IdentityProvider("corp", "https://idp.example.com/sso", origins=("https://mfa.example",))
    quiet = TerminalPrompter(RunOptions(), idp, ScriptedUi(interactive=False))
    assert quiet.approve_origin("https://idp.example.com")
    assert quiet.approve_origin("https://mfa.example")
    assert not quiet.approve_origin("https://evil.example")
    ui = ScriptedUi(confirms=[True, False])
    asking = TerminalPrompter(RunOptions(), idp, ui)
    assert asking.approve_origin("https://fed.example")
    assert asking.approve_origin("https://fed.example")  # asked once
    assert not asking.approve_origin("https://evil.example")
    assert asking.new_origins == ["https://fed.example"]
    assert sum("https://fed.example" in shown for shown in ui.shown) == 1


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://IdP.Example.com:443/a?b#c", "https://idp.example.com"),
        ("http://127.0.0.1:8080/x", "http://127.0.0.1:8080"),
        ("http://[::1]:80/", "http://[::1]"),
        ("data:text/html,<form>", ""),
        ("about:blank", ""),
        ("file:///etc/passwd", ""),
    ],
)
def test_origin_of(url: str, origin: str) -> None:
    assert origin_of(url) == origin


# -- item 3: the assertion's Issuer is remembered ---------------------------------------------


def test_a_changed_issuer_is_refused_without_a_person_and_asked_about_with_one(
    tmp_path: Path,
) -> None:
    settings = Settings(tmp_path)
    idp = settings.save_idp(IdentityProvider("corp", "https://idp.example.com/sso"))
    flow.check_issuer(settings, idp, "https://idp.example.com/realms/aws", ScriptedUi())
    idp = settings.load_idps()["corp"]
    assert idp.issuer == "https://idp.example.com/realms/aws"
    flow.check_issuer(settings, idp, idp.issuer, ScriptedUi(interactive=False))  # unchanged
    with pytest.raises(SamlError, match=r"issued by 'https://evil\.example/'") as err:
        flow.check_issuer(settings, idp, "https://evil.example/", ScriptedUi(interactive=False))
    assert err.value.exit_code == 4
    with pytest.raises(SamlError, match="refused"):
        flow.check_issuer(settings, idp, "https://evil.example/", ScriptedUi(confirms=[False]))
    flow.check_issuer(settings, idp, "https://new.example/", ScriptedUi(confirms=[True]))
    assert settings.load_idps()["corp"].issuer == "https://new.example/"


# -- item 12: stale keys ----------------------------------------------------------------------


def test_the_cache_key_includes_the_user_and_the_idp_url(tmp_path: Path) -> None:
    role = "arn:aws:iam::000000000000:role/R"
    alice = paths.cache_path(tmp_path, "corp", role, None, username="alice", idp_url="https://a/")
    bob = paths.cache_path(tmp_path, "corp", role, None, username="bob", idp_url="https://a/")
    moved = paths.cache_path(tmp_path, "corp", role, None, username="alice", idp_url="https://b/")
    emulator = paths.cache_path(
        tmp_path, "corp", role, "http://localhost:4566", username="alice", idp_url="https://a/"
    )
    assert len({alice, bob, moved, emulator}) == 4


def test_short_sessions_do_not_sign_in_on_every_call(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    issued = datetime.now(timezone.utc)
    keys.save(path, Keys("A", "B", "C", issued + timedelta(seconds=900)), issued=issued)
    # 900 s keys against a 900 s window: the window is clamped to half the lifetime.
    assert keys.load(path, 900) is not None
    assert keys.load(path, 900, now=issued + timedelta(seconds=500)) is None
    calls = []

    def refresh() -> Keys:
        calls.append(1)
        return Keys("A", "B", "C", datetime.now(timezone.utc) + timedelta(seconds=900))

    path.unlink()
    for _ in range(3):
        keys.cached_or_refreshed(path, min_remaining=900, refresh=refresh, lock_timeout=5)
    assert calls == [1]


def profile_of(expires: datetime, **extra: str) -> dict[str, str]:
    return {
        "x_security_token_expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x_role_arn": "arn:aws:iam::000000000000:role/R",
        **extra,
    }


def test_still_valid_checks_the_endpoint_and_the_idp() -> None:
    aws = RunOptions()
    emulator = RunOptions(endpoint_url="http://localhost:4566")
    real = profile_of(soon(), x_sts_endpoint="default", x_idp_url="https://a/")
    from_emulator = profile_of(soon(), x_sts_endpoint="http://localhost:4566")
    assert flow.still_valid(aws, real, idp_url="https://a/") is not None
    assert flow.still_valid(aws, from_emulator) is None  # emulator keys never count for AWS
    assert flow.still_valid(emulator, real) is None
    assert flow.still_valid(emulator, from_emulator) is not None
    assert flow.still_valid(aws, real, idp_url="https://b/") is None
    assert flow.still_valid(aws, profile_of(soon()), idp_url="https://b/") is not None  # older


def test_the_browser_profile_is_cleared_only_under_its_lock(tmp_path: Path) -> None:
    profile = tmp_path / "browser" / "corp"
    profile.mkdir(parents=True)
    (profile / "Cookies").write_text("session")
    with locked_profile(profile, 0):
        with pytest.raises(SignInError, match="Another sign-in is using the browser profile"):
            clear_profile(profile, 0.2)
        assert (profile / "Cookies").exists()
    clear_profile(profile, 0.2)
    assert [p.name for p in profile.iterdir()] == ["awscli_saml_sso.lock"]
    clear_profile(profile, 0.2, remove=True)
    assert not profile.exists()


# -- item 2: a failed refresh is remembered ---------------------------------------------------


def test_a_refused_password_stops_automatic_refreshes_until_a_sign_in(tmp_path: Path) -> None:
    path, record = tmp_path / "cache.json", tmp_path / "corp.refresh-failed.json"
    calls = []

    def refused() -> Keys:
        calls.append(1)
        raise WrongPassword("Invalid username or password.")

    def attempt() -> AssError:
        with pytest.raises(AssError) as err:
            keys.cached_or_refreshed(
                path, min_remaining=300, refresh=refused, lock_timeout=5, failures=record,
                advice="run it in a terminal",
            )  # fmt: skip
        return err.value

    first, second = attempt(), attempt()
    assert calls == [1]  # one password post, however many callers
    assert first.message == second.message
    assert first.exit_code == second.exit_code == 3
    assert "refused the stored password (Invalid username or password.)" in first.message
    assert (
        "automatic refreshes stop here" in first.message and "run it in a terminal" in first.message
    )
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    record.unlink()  # as a successful sign-in does (Settings.clear_refresh_failure)
    fine = Keys("A", "B", "C", soon())
    got, refreshed = keys.cached_or_refreshed(
        path, min_remaining=300, refresh=lambda: fine, lock_timeout=5, failures=record
    )
    assert refreshed and got.access_key_id == "A" and not record.exists()


def test_only_a_refused_password_makes_the_next_sign_in_ask_for_it(tmp_path: Path) -> None:
    """A kept IdP session is not replayed after a refused password: replaying would leave the
    old password in the keyring, and automatic refreshes stopped."""
    settings = Settings(tmp_path)
    path, record = tmp_path / "cache.json", settings.refresh_failure_file("corp")
    record.parent.mkdir(mode=0o700)

    def failing(error: AssError) -> None:
        def refresh() -> Keys:
            raise error

        with pytest.raises(AssError):
            keys.cached_or_refreshed(
                path, min_remaining=300, refresh=refresh, lock_timeout=5, failures=record
            )

    assert not settings.password_refused("corp")
    failing(SignInError("The capture proxy could not reach idp.example.com: refused."))
    assert not settings.password_refused("corp")
    record.unlink()
    failing(WrongPassword("Invalid username or password."))
    assert settings.password_refused("corp")
    settings.clear_refresh_failure("corp")
    assert not settings.password_refused("corp")


def test_other_failures_are_shared_by_waiting_callers(tmp_path: Path) -> None:
    path, record = tmp_path / "cache.json", tmp_path / "corp.refresh-failed.json"
    calls = []
    started = threading.Event()

    def unreachable() -> Keys:
        calls.append(1)
        started.set()
        time.sleep(1)
        raise SignInError("The capture proxy could not reach idp.example.com: refused.")

    errors: list[str] = []

    def caller() -> None:
        try:
            keys.cached_or_refreshed(
                path, min_remaining=300, refresh=unreachable, lock_timeout=30, failures=record
            )
        except AssError as exc:
            errors.append(exc.message)

    first = threading.Thread(target=caller)
    first.start()
    started.wait(10)
    others = [threading.Thread(target=caller) for _ in range(3)]
    for thread in others:
        thread.start()
    for thread in (first, *others):
        thread.join(30)
    assert calls == [1]
    assert errors == ["The capture proxy could not reach idp.example.com: refused."] * 4


# -- README's claims: env output for every shell -----------------------------------------------

NASTY = 'it\'s $HOME `id` "q" \\ ; $(rm -rf x)\nline2'


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_env_output_round_trips_any_value_in_a_real_shell(shell: str) -> None:
    import shutil

    from awscli_saml_sso.aws.shell import render

    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed (dev.sh setup installs it)")
    script = render({"AWS_SESSION_TOKEN": NASTY, "AWS_REGION": "eu-west-1"}, shell)
    show = 'printf %s "$AWS_SESSION_TOKEN"' if shell != "fish" else "printf %s $AWS_SESSION_TOKEN"
    done = subprocess.run(
        [shell, "-c", f"{script}\n{show}"],
        env={"PATH": os.environ["PATH"], "AWS_PROFILE": "gone", "HOME": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert done.stdout == NASTY


def test_env_output_for_powershell_quotes_every_value() -> None:
    from awscli_saml_sso.aws.shell import render

    lines = render({"AWS_SESSION_TOKEN": "it's $x `y`"}, "powershell").splitlines()
    # Single-quoted PowerShell strings expand nothing; a quote is doubled.
    assert lines[0] == "$Env:AWS_SESSION_TOKEN = 'it''s $x `y`'"
    assert "Remove-Item Env:AWS_PROFILE -ErrorAction SilentlyContinue" in lines


# -- README's claims: the keyring's time limit ------------------------------------------------


def test_a_stalled_keyring_reads_as_no_keyring_after_its_time_limit(tmp_path: Path) -> None:
    """A real Secret Service that stops answering (the daemon is frozen with SIGSTOP)."""
    import signal

    import psutil
    from support.sandbox import keyring_session

    with keyring_session(tmp_path) as env:
        daemons = [
            p
            for p in psutil.process_iter(["name", "environ"])
            if p.info["name"] == "gnome-keyring-daemon"
            and (p.info["environ"] or {}).get("DBUS_SESSION_BUS_ADDRESS")
            == env["DBUS_SESSION_BUS_ADDRESS"]
        ]
        assert len(daemons) == 1
        code = (
            "from awscli_saml_sso.idp import passwords\n"
            "try:\n"
            "    passwords.get_password('corp', 'alice')\n"
            "except passwords.KeyringUnavailable as exc:\n"
            "    print(exc)\n"
        )
        daemons[0].send_signal(signal.SIGSTOP)
        try:
            done = subprocess.run(
                [sys.executable, "-c", code],
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            daemons[0].send_signal(signal.SIGCONT)
    assert done.stdout.strip() == "the OS keyring did not answer within 10 s", done.stderr
