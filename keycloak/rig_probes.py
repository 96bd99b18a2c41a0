"""Is it there, and is it the rig? Plain HTTP and socket checks of the two services.

The probes speak to 127.0.0.1 directly (where the rig binds) and never raise:
a silent or foreign port just gives a negative answer.
"""

from __future__ import annotations

import re
import socket
import urllib.error
import urllib.request

HOST = "127.0.0.1"


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """One HTTP request with a short timeout; (0, b"") when nothing answers."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=3) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, b""
    except (OSError, ValueError):
        return 0, b""


def aws(
    port: int, service: str, query: str = "", method: str = "POST", path: str = "/"
) -> tuple[int, bytes]:
    """One AWS API call to the emulator on ``port`` with dummy credentials."""
    # moto and LocalStack route on the credential scope and check no signature.
    auth = (
        f"AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/{service}/aws4_request, "
        "SignedHeaders=host, Signature=0"
    )
    headers = {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}
    return http(method, f"http://{HOST}:{port}{path}", query.encode() or None, headers)


def port_in_use(port: int) -> bool:
    """Whether anything accepts connections on the loopback port (IPv4 or IPv6)."""
    # ::1 counts too: "localhost" may resolve there first and reach a stranger.
    for family, host in ((socket.AF_INET, HOST), (socket.AF_INET6, "::1")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(1)
                if sock.connect_ex((host, port)) == 0:
                    return True
        except OSError:
            continue  # no IPv6 here
    return False


def descriptor(port: int, realm: str) -> bytes | None:
    """The realm's SAML IdP metadata from a Keycloak on ``port``, or None."""
    url = f"http://{HOST}:{port}/realms/{realm}/protocol/saml/descriptor"
    status, body = http("GET", url)
    return body if status == 200 and b"EntityDescriptor" in body else None


def endpoint_account(port: int) -> str | None:
    """The account id an AWS emulator on ``port`` answers with, or None."""
    status, body = aws(port, "sts", "Action=GetCallerIdentity&Version=2011-06-15")
    found = re.search(rb"<Account>(\d+)</Account>", body) if status == 200 else None
    return found.group(1).decode() if found else None


def metadata(url: str) -> bytes | None:
    """SAML metadata at ``url`` (an IdP of the rig on this machine), or None."""
    status, body = http("GET", url.replace("//localhost:", f"//{HOST}:", 1))
    return body if status == 200 and b"EntityDescriptor" in body else None


def provisioned(providers: dict[str, str], port: int, bucket: str) -> bool:
    """True when bucket, roles and each SAML provider with its IdP's current keys exist.

    ``providers`` maps each provider's ARN to its IdP's metadata URL.
    """
    for provider_arn, metadata_url in providers.items():
        certs = re.findall(rb"X509Certificate>([^<]+)<", metadata(metadata_url) or b"")
        query = f"Action=GetSAMLProvider&SAMLProviderArn={provider_arn}&Version=2010-05-08"
        status, body = aws(port, "iam", query)
        if status != 200 or not certs or not all(cert in body for cert in certs):
            return False
    for role in ("Role.User", "Role.Admin"):
        if aws(port, "iam", f"Action=GetRole&RoleName={role}&Version=2010-05-08")[0] != 200:
            return False
    return aws(port, "s3", method="HEAD", path=f"/{bucket}")[0] == 200
