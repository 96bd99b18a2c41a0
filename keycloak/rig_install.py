"""What the rig needs on the machine: Java, the CLI tools, and Keycloak itself.

Keycloak's server distribution is downloaded once from Maven Central
(``org.keycloak:keycloak-quarkus-dist``, checked against Maven's .sha1) into the
cache and unpacked there. No Maven install is needed: the artifact is a plain
file at a fixed path of the repository layout.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from rig_state import RigError

MAVEN_REPO = os.environ.get("ASS_RIG_MAVEN_REPO", "https://repo1.maven.org/maven2").rstrip("/")
JDK_HINT = "install it with `apt-get install openjdk-17-jre-headless` (or run ./dev.sh setup)"
PIP_HINT = (
    "install the dev dependencies with `./dev.sh setup` (pip install -r requirements_dev.txt)"
)


def find_tool(name: str, repo: Path) -> str | None:
    """A tool from the running interpreter's venv, the repo's .venv, else PATH."""
    for directory in (Path(sys.executable).parent, repo / ".venv" / "bin"):
        if (directory / name).is_file():
            return str(directory / name)
    return shutil.which(name)


def java() -> str:
    """Path of a Java 17+ (JAVA_HOME first, as kc.sh does); RigError if none."""
    home = os.environ.get("JAVA_HOME")
    path = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not path or not Path(path).is_file():
        raise RigError(f"Keycloak needs Java 17 or newer and none was found; {JDK_HINT}.")
    out = subprocess.run([path, "-version"], capture_output=True, text=True, check=False).stderr
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(found.group(1)) if found else 0
    if found and major == 1:  # "1.8.0_402" is Java 8
        major = int(found.group(2) or 0)
    if major < 17:
        raise RigError(f"Keycloak needs Java 17 or newer but {path} is Java {major}; {JDK_HINT}.")
    return path


def check_prerequisites(repo: Path) -> dict[str, str]:
    """Paths of java, moto_server, aws and bash; RigError naming the first one missing."""
    tools = {"java": java()}
    for name in ("moto_server", "aws"):
        path = find_tool(name, repo)
        if not path:
            raise RigError(f"`{name}` was not found; {PIP_HINT}.")
        tools[name] = path
    bash = shutil.which("bash")
    if not bash:
        raise RigError("bash runs localstack-setup.sh and was not found; apt-get install bash.")
    tools["bash"] = bash
    return tools


def ensure_keycloak(cache: Path, version: str, log: Callable[[str], None]) -> Path:
    """Keycloak's home in the cache, downloaded and unpacked on first use.

    Raises RigError when the download fails or does not match Maven's .sha1.
    """
    home = cache / f"keycloak-{version}"
    if (home / "bin" / "kc.sh").is_file():
        return home
    cache.mkdir(parents=True, exist_ok=True)
    name = f"keycloak-quarkus-dist-{version}.tar.gz"
    url = f"{MAVEN_REPO}/org/keycloak/keycloak-quarkus-dist/{version}/{name}"
    archive = cache / name
    sha1_file = cache / f"{name}.sha1"
    if not sha1_file.is_file():
        _download(f"{url}.sha1", sha1_file)
    expected = sha1_file.read_text().split()[0].lower()
    if not archive.is_file() or _sha1(archive) != expected:
        log(f"downloading Keycloak {version} from {url}")
        began = time.monotonic()
        part = cache / f"{name}.part"
        _download(url, part)
        if _sha1(part) != expected:
            part.unlink()
            raise RigError(f"The download of {url} does not match its .sha1; retry.")
        part.replace(archive)
        megabytes = archive.stat().st_size / 1e6
        log(f"downloaded {megabytes:.0f} MB in {time.monotonic() - began:.1f} s")
    log(f"unpacking {archive.name}")
    staging = cache / f".unpack-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(staging, filter="data")
        else:  # Python < 3.11.4; the archive's checksum was verified above
            tar.extractall(staging)  # noqa: S202
    (staging / home.name).rename(home)
    shutil.rmtree(staging, ignore_errors=True)
    return home


def _download(url: str, target: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, target.open("wb") as out:
            shutil.copyfileobj(resp, out, 1 << 20)
    except OSError as err:
        target.unlink(missing_ok=True)
        raise RigError(
            f"Could not download {url} ({err}); check the network, "
            "or set ASS_RIG_MAVEN_REPO to a Maven Central mirror."
        ) from err


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()  # noqa: S324 - Maven Central publishes .sha1 checksums
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
