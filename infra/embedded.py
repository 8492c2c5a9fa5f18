"""The engines on one machine: the embedded Kafka broker and the chDB ClickHouse
server, started and stopped together, and how every component finds them.

With ``kafka.bootstrap_servers`` or ``clickhouse.url`` configured, that engine is
external and nothing is started for it.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from infra.clickhouse_server import EmbeddedClickHouse
from infra.kafka_broker import EmbeddedKafka
from infra.kafka_dist import ensure_kafka_libs
from infra.ports import free_port
from pantau.config import PantauConfig

log = logging.getLogger("pantau.infra")

DEFAULT_KAFKA_PORT = 19092
DEFAULT_KAFKA_CONTROLLER_PORT = 19093
DEFAULT_CLICKHOUSE_HTTP_PORT = 18123


class EngineNotRunningError(RuntimeError):
    """An engine is neither configured as external nor running embedded."""


@dataclass(frozen=True)
class Endpoints:
    """Where the Kafka brokers and ClickHouse are, whatever started them."""

    bootstrap_servers: str
    clickhouse_url: str


@dataclass
class UpResult:
    """What ``up`` found or started."""

    started: list[str] = field(default_factory=list)
    already_running: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)


def _running_kafka(config: PantauConfig) -> EmbeddedKafka | None:
    broker = EmbeddedKafka.from_state(config.state_dir)
    return broker if broker is not None and broker.is_running() else None


def _running_clickhouse(config: PantauConfig) -> EmbeddedClickHouse | None:
    server = EmbeddedClickHouse.from_state(config.state_dir)
    return server if server is not None and server.is_running() else None


def up(
    config: PantauConfig,
    *,
    kafka_port: int = DEFAULT_KAFKA_PORT,
    kafka_controller_port: int = DEFAULT_KAFKA_CONTROLLER_PORT,
    clickhouse_port: int = DEFAULT_CLICKHOUSE_HTTP_PORT,
) -> UpResult:
    """Start the embedded engines that are not configured as external and not
    already running."""
    result = UpResult()
    if config.kafka.bootstrap_servers is not None:
        result.external.append("kafka")
    elif _running_kafka(config) is not None:
        result.already_running.append("kafka")
    else:
        libs_dir = ensure_kafka_libs(config.cache_dir)
        EmbeddedKafka(
            config.state_dir, libs_dir, kafka_port, kafka_controller_port
        ).start()
        result.started.append("kafka")
    if config.clickhouse.url is not None:
        result.external.append("clickhouse")
    elif _running_clickhouse(config) is not None:
        result.already_running.append("clickhouse")
    else:
        EmbeddedClickHouse(config.state_dir, clickhouse_port).start()
        result.started.append("clickhouse")
    return result


def down(config: PantauConfig, only: list[str] | None = None) -> list[str]:
    """Stop the embedded engines that ``up`` started (all, or those in ``only``);
    returns the names of those stopped."""
    stopped = []
    wanted = only if only is not None else ["kafka", "clickhouse"]
    server = EmbeddedClickHouse.from_state(config.state_dir)
    if "clickhouse" in wanted and server is not None and server.stop():
        stopped.append("clickhouse")
    broker = EmbeddedKafka.from_state(config.state_dir)
    if "kafka" in wanted and broker is not None and broker.stop():
        stopped.append("kafka")
    return stopped


def status(config: PantauConfig) -> dict[str, str]:
    """One line of state per engine."""
    lines = {}
    if config.kafka.bootstrap_servers is not None:
        lines["kafka"] = f"external bootstrap={config.kafka.bootstrap_servers}"
    else:
        broker = _running_kafka(config)
        lines["kafka"] = (
            f"running bootstrap={broker.bootstrap_servers} pid={broker.pid}"
            if broker is not None
            else "stopped"
        )
    if config.clickhouse.url is not None:
        lines["clickhouse"] = "external"
    else:
        server = _running_clickhouse(config)
        lines["clickhouse"] = (
            f"running url={server.url} data={server.data_dir}"
            if server is not None
            else "stopped"
        )
    return lines


def resolve_bootstrap(config: PantauConfig) -> str:
    """The configured Kafka brokers, or the embedded broker that is running."""
    if config.kafka.bootstrap_servers is not None:
        return config.kafka.bootstrap_servers
    broker = _running_kafka(config)
    if broker is None:
        raise EngineNotRunningError(
            "no kafka.bootstrap_servers configured and the embedded broker is "
            f"not running (state dir {config.state_dir}); start it with "
            "`pantau infra up` or run everything with `pantau up`"
        )
    return broker.bootstrap_servers


def resolve_clickhouse_url(config: PantauConfig) -> str:
    """The configured ClickHouse, or the embedded server that is running."""
    if config.clickhouse.url is not None:
        return config.clickhouse.url
    server = _running_clickhouse(config)
    if server is None:
        raise EngineNotRunningError(
            "no clickhouse.url configured and the embedded ClickHouse server is "
            f"not running (state dir {config.state_dir}); start it with "
            "`pantau infra up` or run everything with `pantau up`"
        )
    return server.url


def resolve_endpoints(config: PantauConfig) -> Endpoints:
    """The configured engines, or the embedded ones that are running."""
    return Endpoints(resolve_bootstrap(config), resolve_clickhouse_url(config))


@contextmanager
def kafka_for_benchmark(config: PantauConfig) -> Iterator[str]:
    """The configured or running broker; else a temporary embedded broker on
    free ports, removed afterwards."""
    try:
        yield resolve_bootstrap(config)
        return
    except EngineNotRunningError:
        pass
    with tempfile.TemporaryDirectory(prefix="pantau-bench-") as state_dir:
        port = free_port()
        broker = EmbeddedKafka(
            Path(state_dir),
            ensure_kafka_libs(config.cache_dir),
            port,
            free_port(exclude={port}),
        )
        broker.start()
        try:
            yield broker.bootstrap_servers
        finally:
            broker.stop()
