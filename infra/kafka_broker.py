"""A real single-node Apache Kafka broker (KRaft mode) on loopback.

`EmbeddedKafka` runs the broker JVM from the jars that `infra.kafka_dist` fetched, with
everything it owns under one state folder:

    <state_dir>/kafka/data               log.dir: topics and the KRaft metadata log
    <state_dir>/kafka/logs               server.log (log4j2) and stdout.log (the JVM)
    <state_dir>/kafka/server.properties  generated on every start
    <state_dir>/kafka/log4j2.properties  generated on every start
    <state_dir>/kafka/broker.json        pid and ports of the running broker

The storage is formatted once, on the first start; later starts reuse it, so topics and
offsets survive a stop, a crash or a restart.
"""

from __future__ import annotations

import base64
import logging
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from infra import processes
from infra.ports import LOOPBACK, port_is_free

log = logging.getLogger("pantau.infra.kafka")

BROKER_MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL_CLASS = "kafka.tools.StorageTool"
MESSAGE_MAX_BYTES = 10 * 1024 * 1024

_LOG_TAIL_LINES = 20
_FORMAT_TIMEOUT_S = 120.0
_FORMAT_HEAP_MB = 256
_PROBE_TIMEOUT_S = 2.0
_STATE_INT_KEYS = ("pid",)
# The JVM leads a process group of its own; signals go to the whole group.
_KIND = processes.ServerKind(name="kafka broker", signal_group=True, log=log)


class KafkaStartError(RuntimeError):
    """The broker could not be started, or did not become ready in time."""


class EmbeddedKafka:
    """One KRaft broker+controller process listening on 127.0.0.1.

    Only the PLAINTEXT listener on `port` is for clients; `controller_port` carries
    the KRaft quorum traffic of the node with itself.
    """

    def __init__(
        self,
        state_dir: Path,
        libs_dir: Path,
        port: int,
        controller_port: int,
        heap_mb: int = 768,
    ) -> None:
        for name, value in (("port", port), ("controller_port", controller_port)):
            if not 0 < value < 65536:
                raise ValueError(f"kafka {name} must be in 1..65535, got {value}")
        if port == controller_port:
            raise ValueError(
                f"kafka port and controller_port must differ, got {port} for both"
            )
        if heap_mb < 128:
            raise ValueError(f"kafka heap_mb must be >= 128, got {heap_mb}")

        self.state_dir = state_dir.resolve()
        self.libs_dir = libs_dir.resolve()
        self.port = port
        self.controller_port = controller_port
        self.heap_mb = heap_mb
        self.kafka_dir = self.state_dir / "kafka"
        self.data_dir = self.kafka_dir / "data"
        self.logs_dir = self.kafka_dir / "logs"
        self.config_path = self.kafka_dir / "server.properties"
        self.log4j_config_path = self.kafka_dir / "log4j2.properties"
        self.state_path = self.kafka_dir / "broker.json"
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return (
            f"EmbeddedKafka(bootstrap_servers={self.bootstrap_servers!r}, "
            f"controller_port={self.controller_port}, state_dir='{self.state_dir}')"
        )

    @property
    def bootstrap_servers(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @classmethod
    def from_state(cls, state_dir: Path) -> EmbeddedKafka | None:
        """Rebuild the launcher of a broker started earlier, from its broker.json.

        Returns None when no broker.json exists (nothing was started, or it was
        stopped). The broker may have died since: ask `is_running()`.
        """
        state_path = state_dir / "kafka" / "broker.json"
        state = processes.read_state(state_path, _STATE_INT_KEYS)
        if state is None:
            return None
        try:
            return cls(
                state_dir,
                Path(state["libs_dir"]),
                port=int(state["port"]),
                controller_port=int(state["controller_port"]),
                heap_mb=int(state["heap_mb"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"{state_path}: expected libs_dir, port, controller_port and heap_mb, "
                f"got {state!r}"
            ) from exc

    def server_properties(self) -> dict[str, str]:
        """Return the broker settings that `start()` writes to server.properties."""
        plaintext = f"PLAINTEXT://{LOOPBACK}:{self.port}"
        controller = f"CONTROLLER://{LOOPBACK}:{self.controller_port}"
        protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"{LOOPBACK}:{self.controller_port}",
            "listeners": f"{plaintext},{controller}",
            "advertised.listeners": plaintext,
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": protocols,
            "log.dir": str(self.data_dir),
            # One node: every internal topic has a single replica.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            # Frames travel as JPEG bytes; a 1080p frame can pass 1 MB.
            "message.max.bytes": str(MESSAGE_MAX_BYTES),
            "log.retention.check.interval.ms": "60000",
            # After a crash the controller refuses the restarted broker until the old
            # registration's session expires (9 s by default); keep that wait short.
            "broker.heartbeat.interval.ms": "1000",
            "broker.session.timeout.ms": "4000",
        }

    def write_config(self) -> Path:
        """Write server.properties and the log4j2 config; return server.properties."""
        self.kafka_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        self.logs_dir.mkdir(exist_ok=True)
        processes.write_text_atomic(
            self.config_path, _render_properties(self.server_properties())
        )
        processes.write_text_atomic(
            self.log4j_config_path, _log4j2_properties(self.logs_dir)
        )
        return self.config_path

    @property
    def pid(self) -> int | None:
        """The broker's pid as broker.json records it; None when none was started."""
        return processes.recorded_pid(self.state_path, _STATE_INT_KEYS)

    def is_running(self) -> bool:
        """Tell whether the broker named in broker.json is alive."""
        pid = self.pid
        return pid is not None and self._is_our_broker(pid)

    def start(self, timeout_s: float = 90) -> None:
        """Start the broker and return once it answers a metadata request.

        Raises KafkaStartError when java is missing, a port is taken, a broker of this
        state folder already runs, the JVM exits during start-up, or it does not
        answer within `timeout_s`.
        """
        started = time.monotonic()
        java = shutil.which("java")
        if java is None:
            raise KafkaStartError(
                "`java` was not found on PATH; the Kafka broker needs a Java 17+ "
                "runtime, install it with: apt-get install -y openjdk-17-jre-headless"
            )
        if not any(self.libs_dir.glob("kafka_2.13-*.jar")):
            raise KafkaStartError(
                f"no kafka_2.13-*.jar in {self.libs_dir}; expected the folder that "
                "infra.kafka_dist.ensure_kafka_libs() returns"
            )
        self._check_not_running()
        for role, port in (("client", self.port), ("controller", self.controller_port)):
            if not port_is_free(port):
                raise KafkaStartError(
                    f"kafka {role} port {port} on {LOOPBACK} is already taken; "
                    "expected a free port, got one with a listener (another broker?)"
                )

        self.write_config()
        if not (self.data_dir / "meta.properties").exists():
            self._format_storage(java)

        command = [
            java,
            f"-Xms{self.heap_mb}m",
            f"-Xmx{self.heap_mb}m",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_config_path}",
            f"-Dkafka.logs.dir={self.logs_dir}",
            "-cp",
            str(self.libs_dir / "*"),
            BROKER_MAIN_CLASS,
            str(self.config_path),
        ]
        self._process = processes.launch_detached(
            command, output_path=self.logs_dir / "stdout.log", cwd=self.kafka_dir
        )
        self._write_state(self._process.pid)
        log.info(
            "kafka broker starting bootstrap=%s controller_port=%s pid=%s state_dir=%s",
            self.bootstrap_servers,
            self.controller_port,
            self._process.pid,
            self.state_dir,
        )

        self._wait_ready(self._process, started + timeout_s)
        log.info(
            "kafka broker ready bootstrap=%s pid=%s startup_s=%.1f",
            self.bootstrap_servers,
            self._process.pid,
            time.monotonic() - started,
        )

    def stop(self, timeout_s: float = 30) -> bool:
        """Stop the broker that `start()` started; return whether one was stopped.

        Sends SIGTERM to the broker's process group, waits up to `timeout_s` for a
        clean shutdown, then sends SIGKILL. Only the pid recorded in broker.json is
        touched, and only while its command line is this state folder's broker.
        """
        pid = self.pid
        if pid is None:
            return False
        if not self._is_our_broker(pid):
            self._reap(pid)
            processes.remove_stale_state(self.state_path, pid, _KIND)
            return False

        stopping = time.monotonic()
        forced = processes.terminate(
            pid, timeout_s, _KIND, child=self._process, is_ours=self._is_our_broker
        )
        self.state_path.unlink(missing_ok=True)
        log.info(
            "kafka broker stopped pid=%s stop_s=%.1f forced=%s",
            pid,
            time.monotonic() - stopping,
            forced,
        )
        return True

    def restart(self, timeout_s: float = 90) -> None:
        """Stop the broker (if running) and start it again on the same ports."""
        self.stop()
        self.start(timeout_s)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """Return the last lines of server.log and of the JVM's stdout/stderr."""
        parts = []
        for name in ("server.log", "stdout.log"):
            path = self.logs_dir / name
            tail = processes.read_log_end(path).splitlines()[-lines:]
            if tail:
                parts.append(f"--- {path} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(parts) if parts else f"(no logs under {self.logs_dir})"

    def _check_not_running(self) -> None:
        state = processes.read_state(self.state_path, _STATE_INT_KEYS)
        if state is None:
            return
        pid = int(state["pid"])
        if self._is_our_broker(pid):
            raise KafkaStartError(
                f"a kafka broker of {self.state_dir} already runs (pid={pid}, "
                f"port={state.get('port')}); expected none, stop it first"
            )
        processes.remove_stale_state(self.state_path, pid, _KIND)

    def _format_storage(self, java: str) -> None:
        cluster_id = _new_cluster_id()
        log.info(
            "formatting kafka storage log_dir=%s cluster_id=%s",
            self.data_dir,
            cluster_id,
        )
        command = [
            java,
            f"-Xmx{_FORMAT_HEAP_MB}m",
            f"-Dlog4j2.configurationFile={self.log4j_config_path}",
            "-cp",
            str(self.libs_dir / "*"),
            STORAGE_TOOL_CLASS,
            "format",
            "--standalone",
            "--cluster-id",
            cluster_id,
            "--config",
            str(self.config_path),
        ]
        try:
            result = processes.run_tool(command, _FORMAT_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise KafkaStartError(
                f"kafka storage format did not finish within {_FORMAT_TIMEOUT_S:.0f} s"
            ) from exc
        if result.returncode != 0:
            output = processes.output_tail(result, 20)
            raise KafkaStartError(
                f"kafka storage format of {self.data_dir} failed with exit code "
                f"{result.returncode}, expected 0:\n{output}"
            )

    def _wait_ready(self, process: subprocess.Popen[bytes], deadline: float) -> None:
        admin: AdminClient | None = None
        while True:
            exit_code = process.poll()
            if exit_code is not None:
                self.state_path.unlink(missing_ok=True)
                raise KafkaStartError(
                    f"kafka broker exited with code {exit_code} during start-up, "
                    f"expected it to keep running; last log lines:\n{self.log_tail()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                processes.kill_child(process, _KIND)
                self.state_path.unlink(missing_ok=True)
                raise KafkaStartError(
                    f"kafka broker did not answer a metadata request on "
                    f"{self.bootstrap_servers} in time; it was killed. Last log "
                    f"lines:\n{self.log_tail()}"
                )
            # librdkafka logs every refused connection, so wait for the listener first.
            if not _accepts_connections(self.port):
                time.sleep(0.2)
                continue
            if admin is None:
                admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
            try:
                metadata = admin.list_topics(timeout=min(_PROBE_TIMEOUT_S, remaining))
            except KafkaException as exc:
                log.debug("kafka broker not ready yet error=%s", exc)
            else:
                if metadata.brokers:
                    return
            time.sleep(0.2)

    def _is_our_broker(self, pid: int) -> bool:
        if processes.child_has_exited(self._process, pid):
            return False
        cmdline = " ".join(processes.process_args(pid))
        return BROKER_MAIN_CLASS in cmdline and str(self.config_path) in cmdline

    def _reap(self, pid: int) -> None:
        if self._process is not None and self._process.pid == pid:
            self._process.poll()

    def _write_state(self, pid: int) -> None:
        details = {
            "port": self.port,
            "controller_port": self.controller_port,
            "heap_mb": self.heap_mb,
            "libs_dir": str(self.libs_dir),
        }
        processes.write_state(self.state_path, pid, details)


def _render_properties(settings: Mapping[str, str]) -> str:
    header = "# Generated by infra/kafka_broker.py on every start; edits are lost.\n"
    return header + "".join(f"{key}={value}\n" for key, value in settings.items())


def _log4j2_properties(logs_dir: Path) -> str:
    log_file = logs_dir / "server.log"
    return f"""\
# Generated by infra/kafka_broker.py on every start; edits are lost.
status = warn
# Kafka logs while it shuts down; log4j's own hook would close the file before that.
shutdownHook = disable
appender.server.type = RollingFile
appender.server.name = server
appender.server.fileName = {log_file}
appender.server.filePattern = {log_file}.%i
appender.server.layout.type = PatternLayout
appender.server.layout.pattern = [%d] %p %m (%c)%n
appender.server.policies.type = Policies
appender.server.policies.size.type = SizeBasedTriggeringPolicy
appender.server.policies.size.size = 50MB
appender.server.strategy.type = DefaultRolloverStrategy
appender.server.strategy.max = 5
rootLogger.level = INFO
rootLogger.appenderRef.server.ref = server
# Every start dumps the full config about ten times (90% of the lines); it is in
# server.properties. Warnings such as unknown settings still get through.
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
"""


def _new_cluster_id() -> str:
    # Kafka's cluster ids are 16 random bytes in URL-safe base64 without padding; its
    # own generator never hands out one that starts with a dash (it reads as a flag).
    while True:
        raw = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not raw.startswith("-"):
            return raw


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1.0):
            return True
    except OSError:
        return False
