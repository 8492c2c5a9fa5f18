"""Fetch the Apache Kafka broker jars from Maven Central into a local cache.

Kafka is not on PyPI, but every jar of the broker is on Maven Central. The small pom in
`infra/kafka/pom.xml` names them; Maven copies them and their dependencies into one
`libs/` folder that `infra.kafka_broker` puts on the broker's classpath.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from infra import processes

log = logging.getLogger("pantau.infra.kafka")

KAFKA_VERSION = "4.4.0"
POM_PATH = Path(__file__).parent / "kafka" / "pom.xml"

_INSTALL_HINT = "install them with: apt-get install -y maven openjdk-17-jre-headless"
_MVN_TIMEOUT_S = 900.0
_OUTPUT_TAIL_LINES = 30


class KafkaSetupError(RuntimeError):
    """The Kafka jars cannot be fetched: a tool is missing or Maven failed."""


def kafka_libs_dir(cache_dir: Path) -> Path:
    """Return where the jars of `KAFKA_VERSION` live under `cache_dir`."""
    return cache_dir / f"kafka-{KAFKA_VERSION}" / "libs"


def ensure_kafka_libs(cache_dir: Path) -> Path:
    """Return the folder of Kafka broker jars, fetching it with Maven if needed.

    The jars are copied into a temporary folder next to the final one and renamed into
    place only once Maven has succeeded, so an interrupted fetch never leaves a
    half-filled `libs/` behind. A second process fetching at the same time is harmless:
    whoever renames last finds the folder already there and drops its own copy.
    """
    # Absolute: Maven resolves a relative output folder against the pom's folder.
    libs_dir = kafka_libs_dir(cache_dir.resolve())
    if _has_broker_jar(libs_dir):
        return libs_dir

    mvn = _require_tool("mvn", "Maven")
    _require_tool("java", "a Java 17+ runtime")
    dist_dir = libs_dir.parent
    dist_dir.parent.mkdir(parents=True, exist_ok=True)
    log.info(
        "fetching Apache Kafka %s jars from Maven Central ... target=%s",
        KAFKA_VERSION,
        libs_dir,
    )
    started = time.monotonic()
    _remove_abandoned_staging(dist_dir)
    staging = Path(tempfile.mkdtemp(prefix=f".{dist_dir.name}-", dir=dist_dir.parent))
    try:
        _copy_dependencies(mvn, staging / "libs")
        if not _has_broker_jar(staging / "libs"):
            raise KafkaSetupError(
                f"Maven finished but {_broker_jar_name()} is missing from "
                f"{staging / 'libs'}; expected it from {POM_PATH}"
            )
        try:
            staging.rename(dist_dir)
        except OSError as exc:
            if not _has_broker_jar(libs_dir):
                raise KafkaSetupError(
                    f"cannot move the fetched jars into {dist_dir}: {exc}; expected "
                    f"that folder to be absent or a complete Kafka {KAFKA_VERSION} "
                    "download, remove it and try again"
                ) from exc
            log.info("kafka jars were fetched concurrently dir=%s", libs_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    jar_count = sum(1 for _ in libs_dir.glob("*.jar"))
    log.info(
        "fetched Apache Kafka %s jars=%s fetch_s=%.1f",
        KAFKA_VERSION,
        jar_count,
        time.monotonic() - started,
    )
    return libs_dir


def _broker_jar_name() -> str:
    return f"kafka_2.13-{KAFKA_VERSION}.jar"


def _has_broker_jar(libs_dir: Path) -> bool:
    return (libs_dir / _broker_jar_name()).is_file()


def _remove_abandoned_staging(dist_dir: Path) -> None:
    # A fetch killed outright (SIGKILL, power loss) leaves its hidden staging folder;
    # one older than the Maven timeout belongs to no live fetch.
    for staging in dist_dir.parent.glob(f".{dist_dir.name}-*"):
        if time.time() - staging.stat().st_mtime > _MVN_TIMEOUT_S:
            shutil.rmtree(staging, ignore_errors=True)


def _require_tool(name: str, what: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise KafkaSetupError(
            f"`{name}` ({what}) is needed to fetch and run the Kafka broker but was "
            f"not found on PATH; {_INSTALL_HINT}"
        )
    return path


def _copy_dependencies(mvn: str, output_dir: Path) -> None:
    command = [
        mvn,
        "--batch-mode",
        "--quiet",
        "--file",
        str(POM_PATH),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={output_dir}",
    ]
    try:
        result = processes.run_tool(command, _MVN_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise KafkaSetupError(
            f"Maven did not finish fetching Kafka {KAFKA_VERSION} within "
            f"{_MVN_TIMEOUT_S:.0f} s; check that Maven Central is reachable"
        ) from exc
    if result.returncode != 0:
        tail = processes.output_tail(result, _OUTPUT_TAIL_LINES)
        raise KafkaSetupError(
            f"Maven failed fetching Kafka {KAFKA_VERSION} jars (exit code "
            f"{result.returncode}, expected 0); command: {' '.join(command)}\n{tail}"
        )
