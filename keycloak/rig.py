#!/usr/bin/env python3
"""The local identity rig: a real Keycloak and a moto server, without Docker.

``rig.py up`` starts (or reuses) Keycloak on 127.0.0.1:8080, moto server on
127.0.0.1:4566 and, when its Debian packages are installed, LemonLDAP::NG on
127.0.0.1:8090 (rig_lemonldap.py), then provisions the emulator with
``localstack-setup.sh`` (one SAML provider per IdP);
``down`` stops what the rig started; ``status`` says what runs; ``env`` prints
shell exports; ``fetch`` only downloads Keycloak into the cache. Every fresh
Keycloak start wipes its dev database and imports every ``keycloak/realm-*.json``,
so those files are the one source of truth (realm-aws.json is the main realm). A realm
file with a ``_rig`` block (realm-aws-idfirst.json) holds only its flow: users, groups,
roles and the AWS client come from its ``base`` realm file at import, each such realm
with its own SAML provider in the emulator.

Standard library only, so it runs before the project's virtualenv exists.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rig_install
import rig_lemonldap
import rig_probes
import rig_state
from rig_state import RigError as RigError  # re-exported: callers catch rig.RigError
from rig_state import Service, State

KEYCLOAK_VERSION = "26.5.6"
REALM = "aws"
ACCOUNT_ID = "000000000000"  # LocalStack's, so ARNs read the same with either emulator
BIND_HOST = rig_probes.HOST
KEYCLOAK_PORT = 8080
ENDPOINT_PORT = 4566
# Clients say "localhost" (as in the login URL) and Keycloak is told so
# with --hostname: Issuer and metadata entityID read the same however it is reached.
KEYCLOAK_URL = f"http://localhost:{KEYCLOAK_PORT}"
ENDPOINT_URL = f"http://localhost:{ENDPOINT_PORT}"
BUCKET = "example-bucket"
SAML_PROVIDER = "SamlExampleProvider"
SAML_PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT_ID}:saml-provider/{SAML_PROVIDER}"
# Test-only bootstrap admin of the master realm (tests read login events with it).
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin"  # noqa: S105
DEFAULT_TIMEOUT = 300.0
SERVICES = ("keycloak", "endpoint", "lemonldap")

REPO = Path(__file__).resolve().parent.parent
REALM_FILE = REPO / "keycloak" / "realm-aws.json"
SETUP_SCRIPT = REPO / "localstack-setup.sh"

Log = Callable[[str], None]


@dataclass(frozen=True)
class RigInfo:
    """Where the rig answers and what it holds: the values tests need."""

    keycloak_url: str
    realm: str
    idp_login_url: str
    endpoint_url: str
    bucket: str
    saml_provider_arn: str
    role_user_arn: str
    role_admin_arn: str
    totp_secret: str
    totp_secret_b32: str
    admin_username: str
    admin_password: str
    # Every IdP of the rig by name ("keycloak", "keycloak-idfirst", ...): its
    # IdP-initiated sign-in URL and the ARN of its SAML provider in the emulator.
    idp_urls: dict[str, str]
    idp_provider_arns: dict[str, str]


@dataclass(frozen=True)
class UpResult:
    """What ``up`` did: the services it started (empty when all were reused)."""

    info: RigInfo
    started: tuple[str, ...]
    provisioned: bool
    seconds: float


def cache_dir() -> Path:
    """The machine-wide cache: Keycloak download, its unpacked home, state and logs."""
    return Path(os.environ.get("ASS_RIG_CACHE") or Path.home() / ".cache/awscli_saml_sso-rig")


def run_dir() -> Path:
    """State file, lock and service logs."""
    path = cache_dir() / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def info() -> RigInfo:
    """The rig's coordinates; the TOTP secret is read from the realm file, its one source."""
    realm = json.loads(REALM_FILE.read_text(encoding="utf-8"))
    secrets = [
        json.loads(cred["secretData"])["value"]
        for user in realm["users"]
        for cred in user.get("credentials", [])
        if cred["type"] == "otp"
    ]
    if not secrets:
        raise RigError(f"{REALM_FILE} holds no OTP credential; the aws_mfa user is missing.")
    return RigInfo(
        keycloak_url=KEYCLOAK_URL,
        realm=REALM,
        idp_login_url=f"{KEYCLOAK_URL}/realms/{REALM}/protocol/saml/clients/amazon-aws",
        endpoint_url=ENDPOINT_URL,
        bucket=BUCKET,
        saml_provider_arn=SAML_PROVIDER_ARN,
        role_user_arn=f"arn:aws:iam::{ACCOUNT_ID}:role/Role.User",
        role_admin_arn=f"arn:aws:iam::{ACCOUNT_ID}:role/Role.Admin",
        totp_secret=secrets[0],
        # Keycloak keys the HMAC with the secret's UTF-8 bytes; authenticator
        # apps (and pyotp) take those bytes in base32, unpadded.
        totp_secret_b32=base64.b32encode(secrets[0].encode()).decode().rstrip("="),
        admin_username=ADMIN_USERNAME,
        admin_password=ADMIN_PASSWORD,
        idp_urls={idp.name: idp.login_url for idp in idps()},
        idp_provider_arns={idp.name: idp.provider_arn for idp in idps()},
    )


@dataclass(frozen=True)
class Idp:
    """One identity provider of the rig, as the emulator and the tests know it."""

    name: str  # "keycloak" for the main realm, "keycloak-<suffix>" for the others
    login_url: str  # IdP-initiated sign-in to AWS
    metadata_url: str  # its SAML IdP metadata (what the SAML provider is made from)
    provider: str  # the SAML provider's name in the emulator

    @property
    def provider_arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT_ID}:saml-provider/{self.provider}"


def idps() -> list[Idp]:
    """The rig's IdPs: the main realm, then each derived realm (a file with a ``_rig`` block)."""
    found = [_keycloak_idp("keycloak", REALM, SAML_PROVIDER)]
    for path in realm_files():
        derived = json.loads(path.read_text(encoding="utf-8")).get("_rig")
        if path != REALM_FILE and derived:
            realm = json.loads(path.read_text(encoding="utf-8"))["realm"]
            name = "keycloak-" + realm.removeprefix(f"{REALM}-")
            found.append(_keycloak_idp(name, realm, derived["samlProvider"]))
    if _lemonldap_installed():
        found.append(
            Idp(
                "lemonldap",
                rig_lemonldap.LOGIN_URL,
                rig_lemonldap.METADATA_URL,
                rig_lemonldap.PROVIDER,
            )
        )
    return found


def _lemonldap_installed() -> bool:
    try:
        rig_lemonldap.check_installed()
    except RigError:
        return False
    return True


def _keycloak_idp(name: str, realm: str, provider: str) -> Idp:
    base = f"{KEYCLOAK_URL}/realms/{realm}/protocol/saml"
    return Idp(name, f"{base}/clients/amazon-aws", f"{base}/descriptor", provider)


def realm_for_import(path: Path) -> dict[str, object]:
    """A realm file as Keycloak imports it: a derived realm gets its base's users and client.

    Everything of the base realm is inherited except what the derived file sets; the
    base's SAML provider name and realm path are replaced by the derived realm's own.
    """
    realm: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    derived = realm.pop("_rig", None)
    if not isinstance(derived, dict):
        return realm
    text = (path.parent / str(derived["base"])).read_text(encoding="utf-8")
    text = text.replace(
        f"saml-provider/{SAML_PROVIDER}", f"saml-provider/{derived['samlProvider']}"
    )
    text = text.replace(f"/realms/{REALM}/", f"/realms/{realm['realm']}/")
    base: dict[str, object] = json.loads(text)
    return {**base, **realm}


def _descriptor() -> bytes | None:
    return rig_probes.descriptor(KEYCLOAK_PORT, REALM)


def _endpoint_account() -> str | None:
    return rig_probes.endpoint_account(ENDPOINT_PORT)


def _provisioned() -> bool:
    providers = {idp.provider_arn: idp.metadata_url for idp in idps()}
    return rig_probes.provisioned(providers, ENDPOINT_PORT, BUCKET)


# --- starting ---------------------------------------------------------------


def realm_files() -> list[Path]:
    """Every realm the rig imports: `keycloak/realm-*.json` (realm-aws.json is the main one)."""
    return sorted(REALM_FILE.parent.glob("realm-*.json"))


def _realm_digest() -> str:
    digest = hashlib.sha256()
    for path in realm_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _spawn(args: list[str], env: dict[str, str], name: str, cwd: Path) -> Service:
    with (run_dir() / f"{name}.log").open("wb") as out:
        # A new session makes the service its own process group, so stopping
        # the group also stops kc.sh's java child.
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    return Service(pid=proc.pid, start_time=rig_state.start_time(proc.pid))


def _start_keycloak(tools: dict[str, str], log: Log) -> Service:
    home = rig_install.ensure_keycloak(cache_dir(), KEYCLOAK_VERSION, log)
    data = home / "data"
    shutil.rmtree(data / "h2", ignore_errors=True)  # a fresh start begins from the realm file
    shutil.rmtree(data / "import", ignore_errors=True)
    (data / "import").mkdir(parents=True)
    for realm_file in realm_files():
        realm = json.dumps(realm_for_import(realm_file), indent=1)
        (data / "import" / realm_file.name).write_text(realm, encoding="utf-8")
    # The person's own KC_* settings (a database, a hostname...) must not leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KC_", "KEYCLOAK_"))}
    env.update(
        JAVA_HOME=str(Path(tools["java"]).resolve().parent.parent),
        JAVA_OPTS_KC_HEAP="-Xms128m -Xmx1g",
        KC_BOOTSTRAP_ADMIN_USERNAME=ADMIN_USERNAME,
        KC_BOOTSTRAP_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    args = [
        str(home / "bin" / "kc.sh"),
        "start-dev",
        "--import-realm",
        f"--http-host={BIND_HOST}",
        f"--http-port={KEYCLOAK_PORT}",
        f"--hostname={KEYCLOAK_URL}",
        # start-dev serves its themes' CSS/JS/images uncacheable and re-reads templates on
        # every page; a production IdP lets browsers cache them. These restore production
        # behaviour so sign-in timings are not dominated by the dev mode.
        "--spi-theme--static-max-age=2592000",
        "--spi-theme--cache-themes=true",
        "--spi-theme--cache-templates=true",
    ]
    log(f"starting Keycloak {KEYCLOAK_VERSION} on {KEYCLOAK_URL}")
    service = _spawn(args, env, "keycloak", home)
    return Service(service.pid, service.start_time, realm_sha256=_realm_digest())


def _start_endpoint(tools: dict[str, str], log: Log) -> Service:
    env = dict(os.environ, MOTO_ACCOUNT_ID=ACCOUNT_ID)
    log(f"starting moto server on {ENDPOINT_URL}")
    # moto_server through rig_moto.py: the same server, taking multi-valued Role attributes.
    python = str(Path(tools["moto_server"]).with_name(Path(sys.executable).name))
    if not Path(python).is_file():
        python = sys.executable
    wrapper = str(Path(__file__).resolve().parent / "rig_moto.py")
    args = [python, wrapper, "-H", BIND_HOST, "-p", str(ENDPOINT_PORT)]
    return _spawn(args, env, "endpoint", run_dir())


def _start_lemonldap(tools: dict[str, str], log: Log) -> Service:
    llng_tools = rig_lemonldap.check_installed()
    realm = json.loads(REALM_FILE.read_text(encoding="utf-8"))
    users = rig_lemonldap.users_from_realm(realm, SAML_PROVIDER)
    log(f"starting LemonLDAP::NG on {rig_lemonldap.URL}")
    args, env = rig_lemonldap.prepare(cache_dir() / "lemonldap", users, llng_tools)
    return _spawn(args, env, "lemonldap", cache_dir() / "lemonldap")


def _lemonldap_metadata() -> bytes | None:
    return rig_probes.metadata(rig_lemonldap.METADATA_URL)


def _services() -> tuple[str, ...]:
    """The services this machine can run: LemonLDAP::NG only where it is installed."""
    return tuple(n for n in SERVICES if n != "lemonldap" or _lemonldap_installed())


def _wait_ready(
    name: str, service: Service | None, ready: Callable[[], bool], deadline: float
) -> None:
    log_file = run_dir() / f"{name}.log"
    while not ready():
        if service is not None and not service.alive():
            tail = log_file.read_text(errors="replace").splitlines()[-15:]
            raise RigError(
                f"The rig's {name} exited while starting; see {log_file}:\n" + "\n".join(tail)
            )
        if time.monotonic() > deadline:
            raise RigError(f"The rig's {name} was not ready in time; see {log_file}.")
        time.sleep(0.3)


def _start_provisioning(
    tools: dict[str, str], log: Log, deadline: float
) -> subprocess.Popen[bytes]:
    """Run localstack-setup.sh in the background: its emulator steps overlap Keycloak's start."""
    env = dict(
        os.environ,
        ENDPOINT_URL=ENDPOINT_URL,
        KEYCLOAK_URL=KEYCLOAK_URL,
        SAML_PROVIDERS=" ".join(f"{idp.provider}={idp.metadata_url}" for idp in idps()),
        KEYCLOAK_WAIT_SECONDS=str(max(30, int(deadline - time.monotonic()))),
        PATH=os.pathsep.join([str(Path(tools["aws"]).parent), os.environ.get("PATH", "")]),
    )
    log("provisioning the emulator with localstack-setup.sh")
    with (run_dir() / "provision.log").open("wb") as out:
        return subprocess.Popen(
            [tools["bash"], str(SETUP_SCRIPT)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _finish_provisioning(setup: subprocess.Popen[bytes], deadline: float) -> None:
    """Wait for localstack-setup.sh; RigError with its output if it fails or overruns."""
    log_file = run_dir() / "provision.log"
    try:
        code = setup.wait(timeout=max(10.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired as err:
        raise RigError(f"localstack-setup.sh did not finish in time; see {log_file}.") from err
    if code != 0:
        output = log_file.read_text(errors="replace").strip()
        raise RigError(f"localstack-setup.sh failed (exit {code}):\n{output}")


def _plan(state: State, log: Log) -> dict[str, str]:
    """'reuse', 'start' or 'restart' for each service; RigError if a stranger holds a port."""
    account = _endpoint_account()
    if account not in (None, ACCOUNT_ID):
        raise RigError(
            f"The AWS emulator on port {ENDPOINT_PORT} uses account {account}, not {ACCOUNT_ID}; "
            "stop it and retry."
        )
    healthy = {
        "keycloak": _descriptor() is not None,
        "endpoint": account is not None,
        "lemonldap": _lemonldap_metadata() is not None,
    }
    ports = {"keycloak": KEYCLOAK_PORT, "endpoint": ENDPOINT_PORT, "lemonldap": rig_lemonldap.PORT}
    plans = {}
    for name in _services():
        service = state.services.get(name)
        ours = service is not None and service.alive()
        if healthy[name]:
            plans[name] = "reuse"
        elif ours:
            plans[name] = "restart"  # ours but not answering: left over from a failed start
        elif rig_probes.port_in_use(ports[name]):
            raise RigError(
                f"Port {ports[name]} is held by a program that is not the rig's {name}; "
                f"stop it (`ss -ltnp 'sport = :{ports[name]}'` shows it) and retry."
            )
        else:
            plans[name] = "start"
    if "lemonldap" not in plans:
        log(f"LemonLDAP::NG is not installed, so the rig runs without it; {rig_lemonldap.HINT}")
    keycloak = state.services.get("keycloak")
    if (
        plans["keycloak"] == "reuse"
        and keycloak is not None
        and keycloak.alive()
        and keycloak.realm_sha256 != _realm_digest()
        and not state.live_leases()  # never pull the rug from a running test session
    ):
        log("the realm file changed since Keycloak started: restarting it")
        plans["keycloak"] = "restart"
    return plans


def _bring_up(state: State, tools: dict[str, str], deadline: float, log: Log) -> UpResult:
    """Start what is missing, wait until it answers, provision; under the rig lock."""
    began = time.monotonic()
    plans = _plan(state, log)
    rig_state.stop(state, tuple(n for n in plans if plans[n] == "restart"))
    started = tuple(n for n in plans if plans[n] != "reuse")
    starters = {
        "keycloak": _start_keycloak,
        "endpoint": _start_endpoint,
        "lemonldap": _start_lemonldap,
    }
    try:
        for name in started:
            state.services[name] = starters[name](tools, log)
            rig_state.save(run_dir(), state)
        fresh = {n: state.services[n] for n in started}
        account_ok = lambda: _endpoint_account() == ACCOUNT_ID  # noqa: E731
        _wait_ready("endpoint", fresh.get("endpoint"), account_ok, deadline)
        setup = _start_provisioning(tools, log, deadline) if started else None
        try:
            if "lemonldap" in plans:
                lemonldap_ok = lambda: bool(_lemonldap_metadata())  # noqa: E731
                _wait_ready("lemonldap", fresh.get("lemonldap"), lemonldap_ok, deadline)
            _wait_ready("keycloak", fresh.get("keycloak"), lambda: bool(_descriptor()), deadline)
            if setup is None and not _provisioned():
                setup = _start_provisioning(tools, log, deadline)
            if setup is not None:
                _finish_provisioning(setup, deadline)
        finally:
            if setup is not None and setup.poll() is None:
                os.killpg(setup.pid, signal.SIGKILL)  # Keycloak failed: it would only wait
                setup.wait()
        provisioned = setup is not None
    except BaseException:
        rig_state.stop(state, started)  # never leave a half-started rig behind
        rig_state.save(run_dir(), state)
        raise
    seconds = time.monotonic() - began
    log(f"rig ready in {seconds:.1f} s (started: {', '.join(started) or 'nothing, all reused'})")
    return UpResult(info=info(), started=started, provisioned=provisioned, seconds=seconds)


def up(
    timeout: float = DEFAULT_TIMEOUT,
    lease: int | None = None,
    log: Log = print,
    queue_timeout: float = 900.0,
) -> UpResult:
    """Bring the rig up, reusing healthy services, and make sure it is provisioned.

    ``lease`` is the PID of a test session that calls ``release`` when done.
    Test sessions take turns (waiting up to ``queue_timeout`` seconds for
    another one to finish), so the sign-ins and sessions Keycloak records are
    their own. Without a lease the rig stays up until ``down`` (a person's
    ``rig up``). Raises RigError for a missing tool, a stranger on a port, a
    failed download or a service not ready within ``timeout`` seconds; what
    this call started is stopped again before the error propagates.
    """
    tools = rig_install.check_prerequisites(REPO)
    queue_deadline = time.monotonic() + queue_timeout
    said_waiting = False
    while True:
        with rig_state.locked(run_dir(), timeout):
            state = rig_state.load(run_dir())
            others = [pid for pid in state.live_leases() if pid != str(lease)]
            if lease is None or not others:
                state.waiting.pop(str(lease), None)
                result = _bring_up(state, tools, time.monotonic() + timeout, log)
                if lease is None:
                    state.pinned = True
                else:
                    state.leases[str(lease)] = rig_state.start_time(lease)
                rig_state.save(run_dir(), state)
                return result
            state.waiting[str(lease)] = rig_state.start_time(lease)
            rig_state.save(run_dir(), state)
        if time.monotonic() > queue_deadline:
            raise RigError(
                f"Test session(s) {', '.join(others)} kept the rig for over {queue_timeout:.0f} s; "
                "wait for them to finish, or stop them."
            )
        if not said_waiting:
            log(f"waiting for test session(s) {', '.join(others)} to finish with the rig")
            said_waiting = True
        time.sleep(1)


def release(lease: int, timeout: float = 120.0) -> list[str]:
    """End a test session's turn; stop the rig unless a session waits or a person pinned it."""
    with rig_state.locked(run_dir(), timeout):
        state = rig_state.load(run_dir())
        state.leases.pop(str(lease), None)
        state.waiting.pop(str(lease), None)
        stopped = []
        if not state.live_leases() and not state.live_waiting() and not state.pinned:
            stopped = rig_state.stop(state, SERVICES)
        rig_state.save(run_dir(), state)
    return stopped


def down(force: bool = False, timeout: float = 120.0) -> tuple[list[str], list[str]]:
    """Stop every service the rig started, whoever asked for it; leave strangers alone.

    While test sessions use the rig it is only unpinned, so the last session
    stops it, unless ``force``. Returns (services stopped, sessions still using it).
    """
    with rig_state.locked(run_dir(), timeout):
        state = rig_state.load(run_dir())
        state.pinned = False
        users = [*state.live_leases(), *state.live_waiting()]
        stopped = []
        if force or not users:
            stopped = rig_state.stop(state, SERVICES)
            state.leases, state.waiting, users = {}, {}, []
        rig_state.save(run_dir(), state)
    return stopped, users


def status() -> dict[str, str]:
    """One line per service plus one for provisioning, for people."""
    state = rig_state.load(run_dir())
    checks = {
        "keycloak": (KEYCLOAK_PORT, KEYCLOAK_URL, _descriptor() is not None),
        "endpoint": (ENDPOINT_PORT, ENDPOINT_URL, _endpoint_account() == ACCOUNT_ID),
    }
    if "lemonldap" in _services():
        healthy = _lemonldap_metadata() is not None
        checks["lemonldap"] = (rig_lemonldap.PORT, rig_lemonldap.URL, healthy)
    lines = {}
    for name, (port, url, healthy) in checks.items():
        service = state.services.get(name)
        ours = service is not None and service.alive()
        owner = f"started by the rig, pid {service.pid}" if ours and service else "not the rig's"
        if healthy:
            lines[name] = f"healthy at {url} ({owner}, log {run_dir() / name}.log)"
        elif rig_probes.port_in_use(port):
            lines[name] = f"port {port} answers, but not as the rig expects ({owner})"
        else:
            lines[name] = "not running"
    lines["provisioned"] = "yes" if _provisioned() else "no"
    pinned = "yes" if state.pinned else "no"
    lines["sessions"] = (
        f"{len(state.live_leases())} test session(s) using it, "
        f"{len(state.live_waiting())} waiting, pinned by `rig up`: {pinned}"
    )
    return lines


def shell_exports() -> str:
    """``export`` lines for ``eval "$(keycloak/rig.py env)"``."""
    values = info()
    names = {
        "ASS_KEYCLOAK_URL": values.keycloak_url,
        "ASS_REALM": values.realm,
        "ASS_IDP_LOGIN_URL": values.idp_login_url,
        "ASS_ENDPOINT_URL": values.endpoint_url,
        "ASS_BUCKET": values.bucket,
        "ASS_SAML_PROVIDER_ARN": values.saml_provider_arn,
        "ASS_ROLE_USER_ARN": values.role_user_arn,
        "ASS_ROLE_ADMIN_ARN": values.role_admin_arn,
        "ASS_TOTP_SECRET_B32": values.totp_secret_b32,
    }
    for name, url in values.idp_urls.items():
        names[f"ASS_IDP_URL_{name.upper().replace('-', '_')}"] = url
    return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in names.items())


def main(argv: list[str] | None = None) -> int:
    """Command line; exit 0 on success, 1 with one sentence on stderr otherwise."""
    parser = argparse.ArgumentParser(prog="keycloak/rig.py", description="The local identity rig.")
    sub = parser.add_subparsers(dest="command", required=True)
    up_parser = sub.add_parser("up", help="start or reuse Keycloak and moto server, then provision")
    up_parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds")
    sub.add_parser("fetch", help="download and unpack Keycloak into the cache (no start)")
    down_parser = sub.add_parser("down", help="stop what the rig started")
    down_parser.add_argument(
        "--force", action="store_true", help="stop even while test sessions use the rig"
    )
    sub.add_parser("status", help="what runs; exit 0 only when healthy and provisioned")
    sub.add_parser("env", help="print shell exports of the rig's URLs and ARNs")
    args = parser.parse_args(argv)

    def say(message: str) -> None:
        print(f"rig: {message}", file=sys.stderr)

    try:
        if args.command == "up":
            up(timeout=args.timeout, log=say)
        elif args.command == "fetch":
            home = rig_install.ensure_keycloak(cache_dir(), KEYCLOAK_VERSION, say)
            say(f"Keycloak {KEYCLOAK_VERSION} is in {home}")
        elif args.command == "down":
            stopped, users = down(force=args.force)
            if users:
                say(f"test session(s) {', '.join(users)} still use the rig; it stops after them")
            else:
                say(f"stopped {', '.join(stopped)}" if stopped else "nothing of the rig's ran")
        elif args.command == "status":
            lines = status()
            for name, line in lines.items():
                print(f"{name:12} {line}")
            healthy = lines["provisioned"] == "yes" and all(
                lines[name].startswith("healthy") for name in _services()
            )
            return 0 if healthy else 1
        else:
            sys.stdout.write(shell_exports())
    except RigError as err:
        say(str(err))
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
