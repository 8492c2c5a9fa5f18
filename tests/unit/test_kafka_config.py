"""The embedded broker's generated files and guards, checked without starting Kafka."""

from __future__ import annotations

import json
import socket
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from infra.kafka_broker import MESSAGE_MAX_BYTES, EmbeddedKafka, KafkaStartError
from infra.kafka_dist import (
    KAFKA_VERSION,
    POM_PATH,
    KafkaSetupError,
    ensure_kafka_libs,
    kafka_libs_dir,
)
from infra.ports import free_port, port_is_free

PORT = 19092
CONTROLLER_PORT = 19093


def _broker(state_dir: Path) -> EmbeddedKafka:
    return EmbeddedKafka(state_dir, state_dir / "libs", PORT, CONTROLLER_PORT)


def _read_properties(path: Path) -> dict[str, str]:
    settings: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("process.roles", "broker,controller"),
        ("node.id", "1"),
        ("controller.quorum.bootstrap.servers", f"127.0.0.1:{CONTROLLER_PORT}"),
        (
            "listeners",
            f"PLAINTEXT://127.0.0.1:{PORT},CONTROLLER://127.0.0.1:{CONTROLLER_PORT}",
        ),
        ("advertised.listeners", f"PLAINTEXT://127.0.0.1:{PORT}"),
        ("controller.listener.names", "CONTROLLER"),
        ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"),
        ("offsets.topic.replication.factor", "1"),
        ("transaction.state.log.replication.factor", "1"),
        ("transaction.state.log.min.isr", "1"),
        ("group.initial.rebalance.delay.ms", "0"),
        ("num.partitions", "1"),
        ("auto.create.topics.enable", "false"),
        ("message.max.bytes", "10485760"),
        ("log.retention.check.interval.ms", "60000"),
    ],
)
def test_server_properties_file(tmp_path: Path, key: str, expected: str) -> None:
    config_path = _broker(tmp_path).write_config()

    assert _read_properties(config_path)[key] == expected


def test_written_file_matches_the_settings_and_layout(tmp_path: Path) -> None:
    broker = _broker(tmp_path)

    config_path = broker.write_config()

    assert config_path == tmp_path.resolve() / "kafka" / "server.properties"
    assert _read_properties(config_path) == broker.server_properties()
    assert broker.server_properties()["log.dir"] == str(
        tmp_path.resolve() / "kafka" / "data"
    )
    assert (tmp_path / "kafka" / "data").is_dir()
    assert (tmp_path / "kafka" / "logs").is_dir()
    assert MESSAGE_MAX_BYTES == 10 * 1024 * 1024


def test_log4j2_config_writes_server_log(tmp_path: Path) -> None:
    broker = _broker(tmp_path)
    broker.write_config()

    log4j = _read_properties(broker.log4j_config_path)

    server_log = tmp_path.resolve() / "kafka" / "logs" / "server.log"
    assert log4j["appender.server.fileName"] == str(server_log)
    assert log4j["rootLogger.level"] == "INFO"


def test_bootstrap_servers(tmp_path: Path) -> None:
    assert _broker(tmp_path).bootstrap_servers == f"127.0.0.1:{PORT}"


@pytest.mark.parametrize(
    ("port", "controller_port", "heap_mb", "message"),
    [
        (0, 9093, 768, "port must be in 1..65535, got 0"),
        (9092, 70000, 768, "controller_port must be in 1..65535, got 70000"),
        (9092, 9092, 768, "must differ, got 9092 for both"),
        (9092, 9093, 64, "heap_mb must be >= 128, got 64"),
    ],
)
def test_bad_settings_are_rejected(
    tmp_path: Path, port: int, controller_port: int, heap_mb: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        EmbeddedKafka(tmp_path, tmp_path, port, controller_port, heap_mb)


def test_start_without_java_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shutil.which", lambda _name: None)

    with pytest.raises(KafkaStartError, match="apt-get install -y openjdk-17"):
        _broker(tmp_path).start()


def test_from_state_without_broker_json_is_none(tmp_path: Path) -> None:
    assert EmbeddedKafka.from_state(tmp_path) is None


def test_stop_leaves_a_process_that_is_not_its_broker_alone(tmp_path: Path) -> None:
    broker = _broker(tmp_path)
    broker.write_config()
    with subprocess.Popen(["sleep", "30"]) as stranger:
        try:
            broker.state_path.write_text(json.dumps({"pid": stranger.pid}))

            assert broker.is_running() is False
            assert broker.stop() is False
            assert stranger.poll() is None
            assert not broker.state_path.exists()
        finally:
            stranger.kill()


def test_pom_pins_the_kafka_version_the_code_expects() -> None:
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}

    version = (
        ET.parse(POM_PATH).getroot().find("m:properties/m:kafka.version", namespace)
    )

    assert version is not None
    assert version.text == KAFKA_VERSION


def test_cached_libs_are_used_without_maven(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    libs_dir = kafka_libs_dir(tmp_path)
    libs_dir.mkdir(parents=True)
    (libs_dir / f"kafka_2.13-{KAFKA_VERSION}.jar").write_bytes(b"")
    monkeypatch.setattr("shutil.which", lambda _name: None)

    assert ensure_kafka_libs(tmp_path) == libs_dir


def test_missing_maven_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shutil.which", lambda _name: None)

    with pytest.raises(KafkaSetupError, match="apt-get install -y maven"):
        ensure_kafka_libs(tmp_path)

    assert list(tmp_path.iterdir()) == []


def test_port_helpers() -> None:
    port = free_port()
    assert port_is_free(port)
    assert free_port(exclude={port}) != port

    with socket.create_server(("127.0.0.1", port)):
        assert not port_is_free(port)
