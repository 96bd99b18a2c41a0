"""Trust, end to end with the rig's Keycloak, real Chromium and a real OS keyring (issue 10):
one failed refresh never becomes a lockout, a plaintext keyring is never used, and the
password stays out of files, logs, process arguments and the browser's environment.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests
from support.rig import Rig
from support.sandbox import Sandbox, assert_nothing_left

pytestmark = [pytest.mark.rig, pytest.mark.browser]

NICK = "kc"
USER = "aws_user"


@pytest.fixture
def user(sandbox: Sandbox, rig: Rig) -> Iterator[Sandbox]:
    """A sandbox with the rig's STS endpoint; after the test, nothing of it may still run."""
    sandbox.env["ASS_ENDPOINT_URL"] = rig.endpoint_url
    yield sandbox
    assert_nothing_left(sandbox)


def keyring_set(user: Sandbox, password: str) -> None:
    code = f"import keyring; keyring.set_password('awscli_saml_sso:{NICK}', {USER!r}, {password!r})"
    subprocess.run([sys.executable, "-c", code], env=user.env, check=True, timeout=30)


def set_rig_password(rig: Rig, password: str) -> None:
    """Set aws_user's password in (this namespace's own) Keycloak."""
    reply = requests.put(
        f"{rig.keycloak_url}/admin/realms/{rig.realm}/users/{rig.user_id(USER)}/reset-password",
        json={"type": "password", "value": password, "temporary": False},
        headers={"Authorization": f"Bearer {rig.admin_token()}"},
        timeout=10,
    )
    reply.raise_for_status()


# -- item 2: a failed refresh is remembered, a refused password is never retried -------------


def test_concurrent_refreshes_with_a_rotated_password_post_it_once(user: Sandbox, rig: Rig) -> None:
    added = user.run(["idp", "add", NICK, rig.idp_login_url, "--username", USER])
    assert added.returncode == 0, added.stderr
    # A first sign-in in the browser keeps the IdP's session (in the keyring), then the
    # password rotates.
    first = user.run(
        ["--idp-nickname", NICK, "--role-arn", rig.role_user_arn, "--no-replay"],
        stdin=f"{USER}\n{USER}\n",
    )
    assert first.returncode == 0, first.stderr
    # Only the session kept for replay survives (its cookies in the keyring): the browser
    # profile's cookies would sign in without the password, as a new machine would not.
    shutil.rmtree(Path(user.env["ASS_CONFIG_DIR"]) / "browser" / NICK)
    keyring_set(user, "rotated-away")
    # No replay: the kept IdP session would sign in without the password.
    call = [
        *("credential-process", "--idp-nickname", NICK, "--role-arn", rig.role_user_arn),
        "--no-replay",
    ]
    before = rig.count_logins(USER, "LOGIN_ERROR")
    callers = [user.start(call) for _ in range(3)]
    outcomes = [(c.wait(300), c.communicate()) for c in callers]
    assert [code for code, _ in outcomes] == [3, 3, 3]
    errors = {err.strip().splitlines()[-1] for _, (_, err) in outcomes}
    assert len(errors) == 1, errors  # the same sentence for everyone
    (error,) = errors
    assert "refused the stored password (Invalid username or password.)" in error
    assert "automatic refreshes stop here" in error and "once in a terminal" in error
    assert rig.count_logins(USER, "LOGIN_ERROR") == before + 1  # one post, not three

    later = user.run(call)
    assert later.returncode == 3 and later.stderr.strip().splitlines()[-1] == error
    assert rig.count_logins(USER, "LOGIN_ERROR") == before + 1

    # The interactive run the message asks for signs in although the saml profile is still
    # valid, and asks for the password (replaying the kept session would leave the rotated
    # password in the keyring); it clears the record and stores the password.
    fixed = user.run(
        ["--idp-nickname", NICK, "--role-arn", rig.role_user_arn], stdin=f"{USER}\n{USER}\n"
    )
    assert fixed.returncode == 0, fixed.stderr
    again = user.run(call)
    assert again.returncode == 0, again.stderr
    assert '"AccessKeyId"' in again.stdout


# -- item 7: a plaintext keyring is no keyring ------------------------------------------------


def test_a_plaintext_keyring_is_refused_and_nothing_is_written(user: Sandbox, rig: Rig) -> None:
    user.env["PYTHON_KEYRING_BACKEND"] = "keyrings.alt.file.PlaintextKeyring"
    first = user.run(
        ["--idp-nickname", NICK, "--idp-url", rig.idp_login_url], stdin=f"{USER}\n{USER}\n"
    )
    assert first.returncode == 0, first.stderr
    assert "The password was not saved: no OS keyring is available" in first.stderr
    assert "keyrings.alt.file.PlaintextKeyring is not one" in first.stderr
    data_home = Path(user.env["XDG_DATA_HOME"])
    assert not (data_home / "python_keyring").exists()
    encoded = base64.b64encode(USER.encode())
    for path in user.root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert encoded not in path.read_bytes(), path
    # Next time it asks again (--no-prompt: it says so instead of using a file). A fresh
    # browser profile and no replay, so that the IdP's session from the first run does not
    # answer.
    shutil.rmtree(user.config_dir / "browser" / NICK)
    quiet = user.run(["--idp-nickname", NICK, "--force", "--no-prompt", "--no-replay"])
    assert quiet.returncode == 2
    assert "Cannot read the stored password: no OS keyring is available" in quiet.stderr


# -- README's claims about the password --------------------------------------------------------


def test_the_password_never_reaches_a_file_a_log_an_argument_or_the_browser(
    user: Sandbox, rig: Rig
) -> None:
    secret = "Zebra-Quartz-7731-unique"
    set_rig_password(rig, secret)
    try:
        seen: list[str] = []
        stop = threading.Event()
        marker = str(user.config_dir)

        def watch() -> None:
            """Look at every process while the sign-in runs, as another local user could."""
            while not stop.is_set():
                for process in psutil.process_iter(["pid", "cmdline"]):
                    try:
                        if secret in " ".join(process.info["cmdline"] or []):
                            seen.append(f"argument of {process.pid}")
                        environ = process.environ()
                    except psutil.Error:
                        continue
                    tool = process.info["cmdline"] and "awscli_saml_sso" in " ".join(
                        process.info["cmdline"][:2]
                    )
                    inherited = "ASS_PASSWORD" in environ or "ASS_MFA_CODE" in environ
                    if environ.get("ASS_CONFIG_DIR") == marker and not tool and inherited:
                        seen.append(f"environment of {process.pid} {process.name()}")
                time.sleep(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            result = user.run(
                [
                    *("--idp-nickname", NICK, "--idp-url", rig.idp_login_url),
                    *("--username", USER, "--no-prompt", "--log-level", "DEBUG"),
                ],
                extra_env={"ASS_PASSWORD": secret, "ASS_MFA_CODE": "000000"},
            )
        finally:
            stop.set()
            watcher.join(10)
        assert result.returncode == 0, result.stderr
        assert "DEBUG" in result.stderr
        assert seen == []
        assert secret not in result.stdout + result.stderr
        needles = (secret.encode(), secret.encode("utf-16-le"), base64.b64encode(secret.encode()))
        for path in user.root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                content = path.read_bytes()
                assert not any(needle in content for needle in needles), path
    finally:
        set_rig_password(rig, USER)


def test_assume_role_with_saml_is_sent_unsigned(sandbox: Sandbox, rig: Rig) -> None:
    """Between the tool and the STS emulator, a forwarder records what is sent."""
    import http.server

    seen: list[tuple[str, bool]] = []

    class Forwarder(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            action = "AssumeRoleWithSAML" if b"AssumeRoleWithSAML" in body else "other"
            seen.append((action, "Authorization" in self.headers))
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            reply = requests.post(rig.endpoint_url, data=body, headers=headers, timeout=30)
            self.send_response(reply.status_code)
            for key in ("Content-Type", "x-amzn-RequestId"):
                if key in reply.headers:
                    self.send_header(key, reply.headers[key])
            self.send_header("Content-Length", str(len(reply.content)))
            self.end_headers()
            self.wfile.write(reply.content)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forwarder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        response = sandbox.root / "response.b64"
        response.write_text(rig.saml_response(USER))
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        # Local AWS keys that a signing client would pick up: they must not be used.
        done = sandbox.run(
            ["--saml-response-file", str(response), "--endpoint-url", endpoint, "--no-prompt"],
            extra_env={"AWS_ACCESS_KEY_ID": "AKIALOCALKEY", "AWS_SECRET_ACCESS_KEY": "local"},
        )
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr
    assert ("AssumeRoleWithSAML", False) in seen, seen
    assert all(not signed for action, signed in seen if action == "AssumeRoleWithSAML")
