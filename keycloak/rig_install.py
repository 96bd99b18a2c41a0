"""What the rig needs on the machine: Java, the CLI tools, and Keycloak itself.

Keycloak's server distribution (``org.keycloak:keycloak-quarkus-dist``) is fetched
once with Maven's own client (``mvn dependency:copy``), so the person's Maven mirrors and
proxies apply and no repository address is written here, then unpacked into the cache.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

from rig_state import RigError

MAVEN_HINT = "install it with `apt-get install maven` (or `brew install maven`)"
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
    """Keycloak's home in the cache, fetched with Maven and unpacked on first use.

    Maven's own client fetches the artifact, so the person's Maven settings (mirrors,
    proxies, credentials) apply, and it checks the repository's checksums (-C).
    Raises RigError when Maven is missing or the fetch fails.
    """
    home = cache / f"keycloak-{version}"
    if (home / "bin" / "kc.sh").is_file():
        return home
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / f"keycloak-quarkus-dist-{version}.tar.gz"
    if not archive.is_file():
        _fetch_with_maven(cache, version, archive, log)
    log(f"unpacking {archive.name}")
    staging = cache / f".unpack-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(staging, filter="data")
        else:  # Python < 3.11.4; Maven verified the archive's checksum
            tar.extractall(staging)  # noqa: S202
    (staging / home.name).rename(home)
    shutil.rmtree(staging, ignore_errors=True)
    return home


def _fetch_with_maven(cache: Path, version: str, archive: Path, log: Callable[[str], None]) -> None:
    mvn = shutil.which("mvn")
    if not mvn:
        raise RigError(f"Maven (mvn) fetches Keycloak and was not found; {MAVEN_HINT}.")
    artifact = f"org.keycloak:keycloak-quarkus-dist:{version}:tar.gz"
    log(f"fetching Keycloak {version} with Maven ({artifact})")
    began = time.monotonic()
    staging = cache / f".fetch-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        done = subprocess.run(
            [
                *(mvn, "-q", "-B", "-C", "dependency:copy"),
                f"-Dartifact={artifact}",
                f"-DoutputDirectory={staging}",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        fetched = staging / archive.name
        if done.returncode != 0 or not fetched.is_file():
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-10:])
            raise RigError(
                f"Maven could not fetch {artifact} (exit {done.returncode}); check the network "
                f"or your Maven settings (~/.m2/settings.xml mirrors and proxies):\n{tail}"
            )
        fetched.replace(archive)
    except subprocess.TimeoutExpired as err:
        raise RigError(f"Maven did not fetch {artifact} within 15 minutes; retry.") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    megabytes = archive.stat().st_size / 1e6
    log(f"fetched {megabytes:.0f} MB in {time.monotonic() - began:.1f} s")
