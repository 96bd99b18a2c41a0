"""Account names, `--json` for scripts and `doctor`, through the installed CLI.

Every failure doctor reports is made for real: no D-Bus for the keyring, an IdP on a closed
port, a driver path that does not exist, PATH without the driver, and an IdP stand-in whose
Date header is ten minutes off.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from support.rig import Rig
from support.sandbox import Sandbox

pytestmark = pytest.mark.rig

ACCOUNT = "000000000000"


def response_file(sandbox: Sandbox, rig: Rig, user: str) -> str:
    path = sandbox.root / f"{user}.b64"
    path.write_text(rig.saml_response(user))
    return str(path)


def as_json(result: Any) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def alias(rig: Rig) -> Iterator[str]:
    """An IAM account alias in the emulator, removed afterwards."""
    iam = boto3.client(
        "iam",
        endpoint_url=rig.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    iam.create_account_alias(AccountAlias="rig-alias")
    try:
        yield "rig-alias"
    finally:
        iam.delete_account_alias(AccountAlias="rig-alias")


# Account names -------------------------------------------------------------------------------
def test_names_set_by_the_person_show_in_menu_roles_and_profile_names(
    sandbox: Sandbox, rig: Rig
) -> None:
    assert sandbox.run(["accounts", "set", ACCOUNT, "rig main"]).returncode == 0
    path = sandbox.config_dir / "accounts.json"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    listed = as_json(sandbox.run(["accounts", "list", "--json"]))
    assert listed == [{"account_id": ACCOUNT, "name": "rig main", "source": "set"}]

    answer = response_file(sandbox, rig, "aws_admin")
    menu = sandbox.run(
        ["--saml-response-file", answer, "--endpoint-url", rig.endpoint_url],
        stdin="Role.User\n",
    )
    assert menu.returncode == 0, menu.stderr
    assert f"Account {ACCOUNT} (rig main):" in menu.stderr
    assert f"AWS account {ACCOUNT} (rig main)" in menu.stderr

    roles = as_json(sandbox.run(["roles", "--json", "--saml-response-file", answer]))
    assert {row["account_name"] for row in roles} == {"rig main"}

    written = sandbox.run(
        [
            "--saml-response-file",
            answer,
            "--endpoint-url",
            rig.endpoint_url,
            "--all-roles",
            "--profile-name-template",
            "{account_name}-{role_name}",
            "--no-prompt",
        ]
    )
    assert written.returncode == 0, written.stderr
    credentials = sandbox.credentials_file.read_text()
    assert "[rig-main-Role.Admin]" in credentials and "[rig-main-Role.User]" in credentials

    bad = sandbox.run(["--all-roles", "--profile-name-template", "{acct}", "--no-prompt"])
    assert bad.returncode == 2 and "{acct}" in bad.stderr


def test_discovered_alias_is_asked_once_and_cached(sandbox: Sandbox, rig: Rig, alias: str) -> None:
    answer = response_file(sandbox, rig, "aws_admin")
    iam = {"AWS_ENDPOINT_URL_IAM": rig.endpoint_url}
    found = sandbox.run(
        ["roles", "--discover-account-names", "--saml-response-file", answer,
         "--endpoint-url", rig.endpoint_url],
        extra_env=iam,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    assert f"Account {ACCOUNT} ({alias}):" in found.stdout
    listed = as_json(sandbox.run(["accounts", "list", "--json"]))
    assert listed == [{"account_id": ACCOUNT, "name": alias, "source": "alias"}]
    # Cached: without IAM at hand (no endpoint for it) the name is still shown.
    again = sandbox.run(["roles", "--discover-account-names", "--saml-response-file", answer])
    assert f"Account {ACCOUNT} ({alias}):" in again.stdout


# JSON for scripts ------------------------------------------------------------------------------
def test_sign_in_json_on_stdout_messages_on_stderr(sandbox: Sandbox, rig: Rig) -> None:
    answer = response_file(sandbox, rig, "aws_user")
    document = as_json(
        sandbox.run(
            [
                "--json",
                "--saml-response-file",
                answer,
                "--endpoint-url",
                rig.endpoint_url,
                "--profile",
                "dev",
                "--no-prompt",
            ]
        )
    )
    [row] = document["profiles"]
    assert document["skipped"] is False
    assert row["profile"] == "dev" and row["role_arn"] == rig.role_user_arn
    assert row["account_id"] == ACCOUNT and row["account_name"] is None
    expires = datetime.fromisoformat(row["expiration"].replace("Z", "+00:00"))
    assert expires > datetime.now(timezone.utc)
    kept = sandbox.run(
        ["--json", "--profile", "dev", "--endpoint-url", rig.endpoint_url, "--no-prompt"]
    )
    assert as_json(kept)["skipped"] is True
    assert "still holds valid credentials" in kept.stderr


def test_idp_list_json(sandbox: Sandbox, rig: Rig) -> None:
    assert as_json(sandbox.run(["idp", "list", "--json"])) == []
    sandbox.run(["idp", "add", "kc", rig.idp_login_url, "--username", "aws_user"])
    [entry] = as_json(sandbox.run(["idp", "list", "--json"]))
    assert {key: entry[key] for key in ("nickname", "url", "username", "browser")} == {
        "nickname": "kc",
        "url": rig.idp_login_url,
        "username": "aws_user",
        "browser": None,
    }
    assert entry["origins"] == [] and entry["issuer"] is None and entry["proxy"] is None


# doctor ---------------------------------------------------------------------------------------
def checks(document: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {check["name"]: (check["status"], check["detail"]) for check in document["checks"]}


def doctor(sandbox: Sandbox, *args: str, env: dict[str, str] | None = None) -> tuple[int, Any]:
    result = sandbox.run(["doctor", "--json", *args], extra_env=env, timeout=120)
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout)


def test_doctor_on_a_healthy_setup(sandbox: Sandbox, rig: Rig) -> None:
    sandbox.run(["idp", "add", "kc", rig.idp_login_url])
    code, document = doctor(sandbox)
    found = checks(document)
    assert code == 0 and document["ok"] is True, found
    assert found["keyring"][0] == "ok" and "SecretService" in found["keyring"][1]
    assert found["driver chromium"][0] == "ok"
    assert found["IdP kc"][0] == "ok"
    # Keycloak (dev mode, Quarkus) sends no Date header: the skew is unknown, not wrong.
    assert found["clock vs kc"] == ("warn", "the IdP sent no Date header; skew unknown")
    text = sandbox.run(["doctor"])
    assert text.returncode == 0 and "[ok  ] keyring" in text.stdout


def test_doctor_reports_a_keyring_without_dbus(sandbox: Sandbox) -> None:
    code, document = doctor(
        sandbox, env={"DBUS_SESSION_BUS_ADDRESS": f"unix:path={sandbox.root}/no-bus"}
    )
    assert code == 1 and checks(document)["keyring"][0] == "fail"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_doctor_reports_an_unreachable_idp(sandbox: Sandbox) -> None:
    sandbox.run(["idp", "add", "gone", f"http://127.0.0.1:{_closed_port()}/saml"])
    code, document = doctor(sandbox)
    status, detail = checks(document)["IdP gone"]
    assert code == 1 and status == "fail" and "unreachable" in detail and "refused" in detail


def test_doctor_reports_missing_drivers(sandbox: Sandbox) -> None:
    code, document = doctor(sandbox, "--driver-path", str(sandbox.root / "chromedriver"))
    assert code == 1 and checks(document)["driver"][0] == "fail"
    # PATH without chromedriver (Chromium is still found where Debian installs it).
    _, document = doctor(sandbox, env={"PATH": str(Path(sys.executable).parent)})
    status, detail = checks(document)["driver chromium"]
    assert status == "warn" and "no chromedriver on PATH" in detail


@contextlib.contextmanager
def skewed_idp(offset: timedelta) -> Iterator[str]:
    """An IdP stand-in whose Date header is `offset` away from this machine's clock."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response_only(200)
            self.send_header(
                "Date", format_datetime(datetime.now(timezone.utc) + offset, usegmt=True)
            )
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/saml"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_doctor_reports_clock_skew_against_the_idp(sandbox: Sandbox) -> None:
    with skewed_idp(timedelta(minutes=-10)) as url:
        sandbox.run(["idp", "add", "skewed", url])
        code, document = doctor(sandbox)
    status, detail = checks(document)["clock vs skewed"]
    assert code == 1 and status == "fail"
    assert re.search(r"\b(59\d|60\d) s ahead of the IdP", detail), detail
