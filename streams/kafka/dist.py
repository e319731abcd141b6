"""Apache Kafka's jars, resolved from Maven Central by the project's pinned files.

``deploy/kafka/pom.xml`` names the broker, its CLI tools and their runtime dependencies;
``deploy/kafka/jars.sha256`` pins every jar that resolution yields. The first use (``make
kafka``, or any broker start) runs Maven's copy-dependencies into a staging folder, checks each
jar against the pins and only then moves it to ``.pulse/kafka/<version>/libs``, so a half
download or a changed artifact is never run.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from streams.errors import BrokerError

REPO = Path(__file__).resolve().parents[2]
POM = REPO / "deploy" / "kafka" / "pom.xml"
PINS = REPO / "deploy" / "kafka" / "jars.sha256"
LOG4J_CONFIG = REPO / "deploy" / "kafka" / "log4j2.properties"
TOOLS_LOG4J_CONFIG = REPO / "deploy" / "kafka" / "tools-log4j2.properties"
STAMP = ".verified"


def kafka_version(pom: Path = POM) -> str:
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    if not match:
        raise BrokerError(f"{pom} names no <kafka.version>")
    return match.group(1)


def default_home() -> Path:
    """Where the jars live: ``PULSE_KAFKA_HOME``, else the checkout's ``.pulse/kafka``."""
    base = os.environ.get("PULSE_KAFKA_HOME")
    return Path(base) if base else REPO / ".pulse" / "kafka"


def libs_dir(home: Path | None = None) -> Path:
    return (home or default_home()) / kafka_version() / "libs"


def read_pins(path: Path = PINS) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split()
            pins[name] = digest
    return pins


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(folder: Path, pins: dict[str, str]) -> None:
    """Every pinned jar is present with its digest, and nothing else is there."""
    found = {p.name for p in folder.glob("*.jar")}
    missing, extra = sorted(set(pins) - found), sorted(found - set(pins))
    if missing or extra:
        raise BrokerError(
            f"Kafka jars in {folder} do not match {PINS.name}: missing {missing}, extra {extra}"
        )
    bad = [name for name, digest in pins.items() if sha256(folder / name) != digest]
    if bad:
        raise BrokerError(f"Kafka jars failed their sha256 pin in {PINS.name}: {bad}")


def _resolve(into: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("Maven (mvn) is needed once to fetch Apache Kafka: run `make kafka`")
    cmd = [mvn, "-q", "-B", "--strict-checksums", "-f", str(POM)]
    cmd += ["dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={into}"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise BrokerError("Maven could not resolve Apache Kafka: " + " | ".join(tail))


def ensure_installed(home: Path | None = None) -> Path:
    """The verified libs folder of the pinned Kafka version, fetching it on first use."""
    libs = libs_dir(home)
    if (libs / STAMP).exists():
        return libs
    libs.parent.mkdir(parents=True, exist_ok=True)
    pins = read_pins()
    with tempfile.TemporaryDirectory(dir=libs.parent, prefix=".staging-") as staging:
        stage = Path(staging) / "libs"
        _resolve(stage)
        verify(stage, pins)
        (stage / STAMP).write_text(kafka_version() + "\n")
        shutil.rmtree(libs, ignore_errors=True)
        stage.rename(libs)
    return libs


def classpath(libs: Path) -> str:
    return str(libs / "*")
