"""LemonLDAP::NG for the rig: a second real IdP, with its own pages and TOTP page.

Debian's packages (lemonldap-ng, liblasso-perl, libdbd-sqlite3-perl,
libdigest-hmac-perl) under ``plackup`` on a loopback port; nothing under /etc is read
or written: its ini (``LLNG_DEFAULTCONFFILE``), configuration, SAML keys, SQLite user
table and session stores live in the rig cache and are written afresh at each start.
The users, their passwords, roles and TOTP secret come from realm-aws.json (the one
source of truth): each Keycloak group's AWS roles become the user's multi-valued Role
attribute (one AttributeValue per role, as LemonLDAP::NG and most IdPs send it).
AWS is the SAML SP, described by our own minimal metadata for urn:amazon:webservices.

Standard library only, like rig.py.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rig_state import RigError

PORT = 8090
URL = f"http://localhost:{PORT}"
SP_ENTITY_ID = "urn:amazon:webservices"
LOGIN_URL = f"{URL}/saml/singleSignOn?IDPInitiated=1&sp={SP_ENTITY_ID}"
METADATA_URL = f"{URL}/saml/metadata"
PROVIDER = "SamlLemonLdapProvider"
ACS = "https://signin.aws.amazon.com/saml"
ROLE_ATTRIBUTE = "https://aws.amazon.com/SAML/Attributes/Role"
PORTAL_LIB = "/usr/share/perl5/Lemonldap/NG/Portal/Main.pm"
STATIC = Path("/usr/share/lemonldap-ng/portal/htdocs/static")
JAVASCRIPT = Path("/usr/share/javascript")  # Debian's jQuery, Bootstrap... the pages load
TEMPLATES = Path("/usr/share/lemonldap-ng/portal/templates")
HINT = "./dev.sh setup installs it and the Perl modules its portal loads (see APT_PACKAGES)"
PACKAGED_CONFIG = Path("/var/lib/lemonldap-ng/conf/lmConf-1.json")


@dataclass(frozen=True)
class User:
    """One rig user as LemonLDAP::NG gets it."""

    uid: str
    password: str
    roles: list[str]  # "role ARN,provider ARN" pairs
    session_duration: str | None
    totp_secret_b32: str | None


def users_from_realm(realm: dict[str, Any], base_provider: str) -> list[User]:
    """The realm file's users, their AWS roles (from their groups) and TOTP secret."""
    groups = {g["path"]: g for g in realm.get("groups", [])}
    found = []
    for user in realm.get("users", []):
        password, totp = None, None
        for cred in user.get("credentials", []):
            if cred["type"] == "password":
                password = cred["value"]
            elif cred["type"] == "otp":
                secret = json.loads(cred["secretData"])["value"]
                totp = base64.b32encode(secret.encode()).decode().rstrip("=")
        roles: list[str] = []
        duration = None
        member_of = [groups[path] for path in user.get("groups", []) if path in groups]
        for source in [*member_of, user]:
            for role in source.get("clientRoles", {}).get(SP_ENTITY_ID, []):
                pair = role.replace(f"saml-provider/{base_provider}", f"saml-provider/{PROVIDER}")
                if pair not in roles:
                    roles.append(pair)
            duration = (source.get("attributes", {}).get("SessionDuration") or [duration])[0]
        if password is not None:
            found.append(User(user["username"], password, roles, duration, totp))
    return found


def check_installed() -> dict[str, str]:
    """plackup, perl and openssl paths; RigError naming the packages when missing."""
    tools = {name: shutil.which(name) for name in ("plackup", "perl", "openssl")}
    missing = [name for name, path in tools.items() if not path]
    if missing or not Path(PORTAL_LIB).is_file() or not PACKAGED_CONFIG.is_file():
        raise RigError(
            f"LemonLDAP::NG is not installed ({', '.join(missing) or PORTAL_LIB}); {HINT}."
        )
    return {name: str(path) for name, path in tools.items()}


def _sp_metadata() -> str:
    """AWS as a SAML SP: its entity id and where it takes the POSTed response."""
    return (
        '<?xml version="1.0"?>'
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"'
        f' entityID="{SP_ENTITY_ID}">'
        '<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"'
        ' WantAssertionsSigned="true">'
        "<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</md:NameIDFormat>"
        '<md:AssertionConsumerService index="1" isDefault="true"'
        ' Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"'
        f' Location="{ACS}"/>'
        "</md:SPSSODescriptor></md:EntityDescriptor>"
    )


def _keys(home: Path, openssl: str) -> tuple[str, str]:
    """A fresh signing key and self-signed certificate (PEM), made once per rig cache."""
    key, cert = home / "saml.key", home / "saml.crt"
    if not (key.is_file() and cert.is_file()):
        subprocess.run(
            [
                *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256"),
                *("-days", "3650", "-subj", "/CN=lemonldap.rig.localhost"),
                *("-keyout", str(key), "-out", str(cert)),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        key.chmod(0o600)
    return key.read_text(), cert.read_text()


def _config(home: Path, private_key: str, certificate: str) -> dict[str, object]:
    """The packaged configuration (the defaults of its version), with the rig's settings."""
    base: dict[str, object] = json.loads(PACKAGED_CONFIG.read_text(encoding="utf-8"))
    base.pop("demoExportedVars", None)
    return {**base, **_rig_settings(home, private_key, certificate)}


def _rig_settings(home: Path, private_key: str, certificate: str) -> dict[str, object]:
    exported = {
        "roles": f"0;{ROLE_ATTRIBUTE};urn:oasis:names:tc:SAML:2.0:attrname-format:uri;Role",
        "uid": "1;https://aws.amazon.com/SAML/Attributes/RoleSessionName;"
        "urn:oasis:names:tc:SAML:2.0:attrname-format:uri;RoleSessionName",
        "duration": "0;https://aws.amazon.com/SAML/Attributes/SessionDuration;"
        "urn:oasis:names:tc:SAML:2.0:attrname-format:uri;SessionDuration",
    }
    sessions = {"Directory": str(home / "sessions"), "LockDirectory": str(home / "sessions/lock")}
    psessions = {
        "Directory": str(home / "psessions"),
        "LockDirectory": str(home / "psessions/lock"),
    }
    return {
        "cfgNum": 1,
        "cfgAuthor": "awscli_saml_sso rig",
        "portal": f"{URL}/",
        "domain": "localhost",
        "cookieName": "lemonldap",
        "securedCookie": 0,
        # Over plain http Chromium drops SameSite=None cookies that are not Secure.
        "sameSite": "Lax",
        "portalSkin": "bootstrap",
        "authentication": "DBI",
        "userDB": "Same",
        "passwordDB": "DBI",
        "registerDB": "Null",
        "dbiAuthChain": f"dbi:SQLite:dbname={home / 'users.sqlite'}",
        "dbiAuthUser": "",
        "dbiAuthPassword": "",
        "dbiAuthTable": "users",
        "dbiAuthLoginCol": "uid",
        "dbiAuthPasswordCol": "password",
        "dbiAuthPasswordHash": "",
        "dbiExportedVars": {"uid": "uid", "roles": "roles", "duration": "duration"},
        "exportedVars": {},
        "macros": {"_whatToTrace": "$uid"},
        "whatToTrace": "_whatToTrace",
        "groups": {},
        "locationRules": {"localhost": {"default": "accept"}},
        "globalStorage": "Apache::Session::File",
        "globalStorageOptions": sessions,
        "persistentStorage": "Apache::Session::File",
        "persistentStorageOptions": psessions,
        "localSessionStorage": "",
        "totp2fActivation": '$_2fDevices =~ /"type":\\s*"TOTP"/s',
        "totp2fSelfRegistration": 0,
        "totp2fDigits": 6,
        "totp2fInterval": 30,
        "totp2fRange": 1,
        "issuerDBSAMLActivation": 1,
        "issuerDBSAMLPath": "^/saml/",
        "samlEntityID": "#PORTAL#/saml/metadata",
        "samlServicePrivateKeySig": private_key,
        "samlServicePrivateKeySigPwd": "",
        "samlServicePublicKeySig": certificate,
        "samlServicePrivateKeyEnc": private_key,
        "samlServicePrivateKeyEncPwd": "",
        "samlServicePublicKeyEnc": certificate,
        "samlServiceUseCertificateInResponse": 1,
        "samlServiceSignatureMethod": "RSA_SHA256",
        "samlOrganizationDisplayName": "awscli_saml_sso rig",
        "samlOrganizationName": "awscli_saml_sso rig",
        "samlOrganizationURL": URL,
        "samlSPMetaDataXML": {"aws": {"samlSPMetaDataXML": _sp_metadata()}},
        "samlSPMetaDataOptions": {
            "aws": {
                "samlSPMetaDataOptionsEnableIDPInitiatedURL": 1,
                "samlSPMetaDataOptionsNameIDFormat": "transient",
                "samlSPMetaDataOptionsSignSSOMessage": 1,
                "samlSPMetaDataOptionsSignSLOMessage": 1,
                "samlSPMetaDataOptionsCheckSSOMessageSignature": 0,
                "samlSPMetaDataOptionsCheckSLOMessageSignature": 0,
                "samlSPMetaDataOptionsEncryptionMode": "none",
                "samlSPMetaDataOptionsSignatureMethod": "RSA_SHA256",
                "samlSPMetaDataOptionsOneTimeUse": 0,
                "samlSPMetaDataOptionsForceUTF8": 1,
                "samlSPMetaDataOptionsSessionNotOnOrAfterTimeout": 72000,
                "samlSPMetaDataOptionsNotOnOrAfterTimeout": 72000,
            }
        },
        "samlSPMetaDataExportedAttributes": {"aws": exported},
    }


_PSGI = """use strict;
use Plack::Builder;
use Plack::App::File;
use Lemonldap::NG::Portal::Main;
my $portal = Lemonldap::NG::Portal::Main->run({});
builder {
    mount '/static' => Plack::App::File->new(root => '{static}')->to_app;
    mount '/javascript' => Plack::App::File->new(root => '{javascript}')->to_app;
    mount '/' => $portal;
};
"""

# Seeds a user's TOTP device in the persistent session store, as the self-registration
# page would: argv = ini file, uid, base32 secret.
_SEED_TOTP = """use strict;
use Lemonldap::NG::Common::Conf;
use Lemonldap::NG::Common::Session;
use Lemonldap::NG::Portal::Main::Constants;
use Digest::MD5 qw(md5_hex);
use JSON;
my ($ini, $uid, $secret) = @ARGV;
my $conf = Lemonldap::NG::Common::Conf->new({confFile => $ini})->getConf;
my $devices = to_json([{type => 'TOTP', name => 'rig', _secret => $secret, epoch => time}]);
my $session = Lemonldap::NG::Common::Session->new({
    storageModule        => $conf->{persistentStorage},
    storageModuleOptions => $conf->{persistentStorageOptions},
    id                   => md5_hex($uid),
    force                => 1,
    kind                 => 'Persistent',
    info                 => {_session_uid => $uid, _2fDevices => $devices, _utime => time},
});
die "could not seed the TOTP device of $uid: " . ($session->error // '') . "\\n" if $session->error;
"""


def prepare(
    home: Path, users: list[User], tools: dict[str, str]
) -> tuple[list[str], dict[str, str]]:
    """Write a fresh configuration into ``home``; the command line and environment to start it."""
    shutil.rmtree(home / "sessions", ignore_errors=True)
    shutil.rmtree(home / "psessions", ignore_errors=True)
    for sub in ("conf", "sessions/lock", "psessions/lock"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    private_key, certificate = _keys(home, tools["openssl"])
    config = _config(home, private_key, certificate)
    (home / "conf" / "lmConf-1.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    ini = home / "lemonldap-ng.ini"
    ini.write_text(
        "[all]\nlogLevel = warn\ncheckTime = 1\n"
        f"[configuration]\ntype = File\ndirName = {home / 'conf'}\n"
        f"[portal]\nstaticPrefix = /static\ntemplateDir = {TEMPLATES}\nlanguages = en\n",
        encoding="utf-8",
    )
    database = home / "users.sqlite"
    database.unlink(missing_ok=True)
    with sqlite3.connect(database) as db:
        db.execute(
            "CREATE TABLE users (uid TEXT PRIMARY KEY, password TEXT, roles TEXT, duration TEXT)"
        )
        db.executemany(
            "INSERT INTO users VALUES (?, ?, ?, ?)",
            # LemonLDAP::NG splits multi-valued attributes on "; ", its default separator.
            [(u.uid, u.password, "; ".join(u.roles) or None, u.session_duration) for u in users],
        )
    db.close()
    env = dict(os.environ, LLNG_DEFAULTCONFFILE=str(ini))
    for user in users:
        if user.totp_secret_b32:
            subprocess.run(
                [tools["perl"], "-e", _SEED_TOTP, str(ini), user.uid, user.totp_secret_b32],
                check=True,
                capture_output=True,
                env=env,
                timeout=60,
            )
    psgi = home / "portal.psgi"
    psgi.write_text(
        _PSGI.replace("{static}", str(STATIC)).replace("{javascript}", str(JAVASCRIPT)),
        encoding="utf-8",
    )
    args = [tools["plackup"], "--host", "127.0.0.1", "--port", str(PORT), str(psgi)]
    return args, env
