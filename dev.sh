#!/usr/bin/env bash
# Developer entry point for awscli_saml_sso.
#
#   ./dev.sh setup               install what this machine lacks (Debian packages,
#                                .venv with the pinned dev dependencies, Keycloak)
#   ./dev.sh rig up|down|status|env
#                                the local identity rig (Keycloak + moto server)
#   ./dev.sh demo                setup, rig up, a headless sign-in as aws_user, then
#                                list the demo bucket with the new credentials
#   ./dev.sh test [pytest args]  setup, lint, then the whole test suite against the rig
#   ./dev.sh lint                ruff (lint + format check), mypy (also as on Windows
#                                and macOS) and the import contracts
#
# Each setup step is skipped quickly when already satisfied, so repeated runs
# (and CI on the same machine) spend their time on the tests.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
REPO="$PWD"
VENV="$REPO/.venv"
PYTHON="${PYTHON:-python3}"
# Debian packages the tests need; the JDK is chosen separately (see ensure_java).
# gnome-keyring + dbus give the tests a real OS keyring; fish and zsh check `env --shell`;
# firefox-esr + libnss3-tools (certutil) for the Firefox tests (geckodriver: ensure_geckodriver);
# maven fetches Keycloak for the rig.
APT_PACKAGES=(chromium chromium-driver xvfb xdotool curl ca-certificates gnome-keyring dbus fish
    zsh firefox-esr libnss3-tools maven)
# squid and an MIT KDC for the corporate-network tests (tests/support/corpnet.py).
APT_PACKAGES+=(squid krb5-kdc krb5-admin-server krb5-user)
# LemonLDAP::NG for the rig (keycloak/rig_lemonldap.py) and the Perl modules its portal loads.
APT_PACKAGES+=(lemonldap-ng liblasso-perl libdbd-sqlite3-perl libdigest-hmac-perl openssl
    libconvert-base32-perl libgd-securityimage-perl libxml-simple-perl libio-string-perl
    libstring-random-perl libcrypt-openssl-bignum-perl libapache-session-browseable-perl
    libcookie-baker-xs-perl)
JAVA_PACKAGES=(openjdk-17-jre-headless openjdk-21-jre-headless default-jre-headless)

say() { echo "dev.sh: $*" >&2; }
die() {
    say "$*"
    exit 1
}

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "installing system packages needs root; run as root or install sudo, then retry."
    fi
}

APT_UPDATED=0
apt_update() {
    command -v apt-get >/dev/null 2>&1 ||
        die "system packages are missing and there is no apt-get here; install: $* (see dev.sh)."
    if [[ $APT_UPDATED -eq 0 ]]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
}

apt_install() {
    apt_update "$@"
    say "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

java_major() {
    local java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
    command -v "$java" >/dev/null 2>&1 || {
        echo 0
        return
    }
    "$java" -version 2>&1 | sed -n 's/.*version "\(1\.\)\{0,1\}\([0-9]*\).*/\2/p' | head -n1
}

ensure_java() {
    [[ $(java_major) -ge 17 ]] && return
    apt_update openjdk-17-jre-headless
    local pkg
    for pkg in "${JAVA_PACKAGES[@]}"; do
        if apt-cache show "$pkg" >/dev/null 2>&1; then
            apt_install "$pkg"
            return
        fi
    done
    die "no Java 17+ package found; install a JDK 17 or newer (e.g. apt-get install openjdk-17-jre-headless)."
}

# geckodriver has no Debian package: cargo builds it into ~/.cargo/bin (cache in ~/.cargo).
cargo_bin() { echo "${CARGO_HOME:-$HOME/.cargo}/bin"; }

ensure_geckodriver() {
    command -v geckodriver >/dev/null 2>&1 && return
    [[ -x "$(cargo_bin)/geckodriver" ]] && return
    local cargo
    cargo="$(command -v cargo || true)"
    if [[ -z $cargo && -x "$(cargo_bin)/cargo" ]]; then
        cargo="$(cargo_bin)/cargo"
    fi
    if [[ -z $cargo ]]; then
        apt_install cargo
        cargo="$(command -v cargo)"
    fi
    say "$cargo install --locked geckodriver (a few minutes on a small machine)"
    "$cargo" install --locked geckodriver ||
        die "building geckodriver failed; it needs Rust 1.85 or newer (rustup's toolchain if the system cargo is older), then rerun ./dev.sh setup."
}

setup_system() {
    local missing=() pkg
    if command -v dpkg-query >/dev/null 2>&1; then
        for pkg in "${APT_PACKAGES[@]}"; do
            installed "$pkg" || missing+=("$pkg")
        done
    fi
    [[ ${#missing[@]} -eq 0 ]] || apt_install "${missing[@]}"
    ensure_java
    ensure_geckodriver
}

setup_venv() {
    if [[ ! -x "$VENV/bin/python" ]]; then
        say "creating $VENV with $PYTHON"
        if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
            rm -rf "$VENV"
            apt_install python3-venv # Debian's python3 ships without ensurepip
            "$PYTHON" -m venv "$VENV"
        fi
    fi
    # Reinstall only when the inputs changed (or the package is not importable).
    local stamp_file="$VENV/.dev-sh-stamp" stamp
    stamp="$(cat requirements_dev.txt setup.cfg pyproject.toml <(echo compat) | sha256sum | cut -d' ' -f1)"
    if [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]] &&
        "$VENV/bin/python" -c 'import awscli_saml_sso' 2>/dev/null; then
        return
    fi
    # The path-based editable install (compat) costs nothing at interpreter start; the default
    # one imports a finder (pathlib, importlib.util: ~25 ms) in every Python process.
    say "pip install -r requirements_dev.txt -e . (editable_mode=compat)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements_dev.txt
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
        --config-settings editable_mode=compat -e .
    echo "$stamp" >"$stamp_file"
}

setup() {
    setup_system
    setup_venv
    "$VENV/bin/python" keycloak/rig.py fetch
}

# As root (CI, containers) Chromium runs only without its sandbox, which the tool does only
# on this explicit opt-in; an ordinary user keeps the sandbox.
no_sandbox_as_root() { if [[ $(id -u) -eq 0 ]]; then export ASS_BROWSER_NO_SANDBOX=1; fi; }

# The rig starts (about a minute) while lint runs, unless one is already up; the test session
# reuses it, and what was started here is stopped when this script ends, however it ends.
RIG_STARTED_HERE=""
stop_own_rig() {
    if [[ -n "$RIG_STARTED_HERE" ]]; then
        wait "$RIG_STARTED_HERE" 2>/dev/null || true
        "$VENV/bin/python" keycloak/rig.py down >/dev/null 2>&1 || true
    fi
}

run_tests() {
    setup
    no_sandbox_as_root
    local status=0 rig_log="$REPO/.rig/up.log"
    if ! "$VENV/bin/python" keycloak/rig.py status >/dev/null 2>&1; then
        mkdir -p "$REPO/.rig"
        "$VENV/bin/python" keycloak/rig.py up >"$rig_log" 2>&1 &
        RIG_STARTED_HERE=$!
        trap stop_own_rig EXIT
    fi
    lint
    if [[ -n "$RIG_STARTED_HERE" ]] && ! wait "$RIG_STARTED_HERE"; then
        RIG_STARTED_HERE=""
        cat "$rig_log" >&2
        "$VENV/bin/python" keycloak/rig.py down >/dev/null 2>&1 || true
        say "the rig did not start (above); the tests that need it would fail."
        return 1
    fi
    # The Firefox tests find geckodriver on PATH, wherever cargo put it.
    export PATH="$PATH:$(cargo_bin)"
    "$VENV/bin/python" -m pytest "$@" || status=$?
    if [[ $status -eq 5 ]]; then
        say "pytest collected no tests; that counts as a failure."
        return 1
    fi
    return "$status"
}

lint() {
    local files=(awscli_saml_sso tests keycloak bench)
    "$VENV/bin/ruff" check "${files[@]}"
    "$VENV/bin/ruff" format --check "${files[@]}"
    # mypy's caches (one per platform) live with the other downloads: a fresh clone reuses them.
    local mypy_cache="${XDG_CACHE_HOME:-$HOME/.cache}/awscli_saml_sso-mypy"
    MYPYPATH="$REPO/keycloak:$REPO/tests" MYPY_CACHE_DIR="$mypy_cache/linux" \
        "$VENV/bin/mypy" --strict "${files[@]}"
    # The product as Windows and macOS see it: every platform-only call must be guarded.
    # (The rig, the benchmark and most tests drive Linux-only tools, so they are not.)
    local platform
    for platform in win32 darwin; do
        MYPY_CACHE_DIR="$mypy_cache/$platform" \
            "$VENV/bin/mypy" --strict --platform "$platform" awscli_saml_sso
    done
    "$VENV/bin/lint-imports" --no-cache
}

# The tool's main job against the local rig, in a sandbox under .rig/demo (never ~/.aws).
demo() {
    setup
    "$VENV/bin/python" keycloak/rig.py up
    no_sandbox_as_root
    local sandbox="$REPO/.rig/demo"
    rm -rf "$sandbox"
    mkdir -p "$sandbox/home"
    local idp_url="http://localhost:8080/realms/aws/protocol/saml/clients/amazon-aws"
    export HOME="$sandbox/home" ASS_CONFIG_DIR="$sandbox/config"
    export AWS_SHARED_CREDENTIALS_FILE="$sandbox/aws/credentials" AWS_CONFIG_FILE="$sandbox/aws/config"
    export ASS_ENDPOINT_URL="http://localhost:4566"
    unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
    say "signing in headless as aws_user (test-only password, passed through ASS_PASSWORD)"
    (
        set -x
        ASS_PASSWORD=aws_user "$VENV/bin/awscli_saml_sso" --idp-nickname rig --idp-url "$idp_url" \
            --username aws_user --no-prompt
    )
    say "listing the demo bucket with the new credentials"
    (
        set -x
        "$VENV/bin/aws" --profile saml --region us-east-1 --endpoint-url "$ASS_ENDPOINT_URL" \
            s3 ls s3://example-bucket
    )
    say "done. The rig keeps running (./dev.sh rig down stops it); the demo's files are in $sandbox."
}

rig_python() { if [[ -x "$VENV/bin/python" ]]; then echo "$VENV/bin/python"; else echo "$PYTHON"; fi; }

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; }

command="${1:-}"
[[ $# -gt 0 ]] && shift
case "$command" in
setup) setup ;;
rig) exec "$(rig_python)" keycloak/rig.py "$@" ;;
test) run_tests "$@" ;;
demo) demo ;;
lint) lint ;;
-h | --help | help) usage ;;
*)
    usage
    exit 2
    ;;
esac
