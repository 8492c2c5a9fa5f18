"""The deployment files in infra/ (compose, Kubernetes, Docker): valid against
the Compose specification and the Kubernetes 1.37 schemas, lint-clean, and
consistent with Pantau itself (every tier present, every command one that
`pantau` accepts, the configuration loadable). They cannot be started here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from pantau.cli import build_parser
from pantau.config_loader import load_config

INFRA = Path(__file__).resolve().parents[2] / "infra"
COMPOSE = INFRA / "compose" / "compose.yaml"
K8S = INFRA / "k8s"
TIERS = {"producers", "inference", "windows", "sink", "alerts", "webhooks", "web"}
K8S_VERSION = "1.37.0"


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    documents = []
    for name in kustomization["resources"]:
        for document in yaml.safe_load_all((K8S / name).read_text()):
            documents.append((name, document))
    return documents


def test_yaml_files_are_lint_clean() -> None:
    config = YamlLintConfig(file=str(INFRA / "yamllint.yaml"))
    files = [*INFRA.glob("compose/*.yaml"), *INFRA.glob("k8s/*.yaml")]
    files += [*INFRA.glob("grafana/provisioning/*/*.yaml")]
    assert len(files) >= 10
    problems = [
        f"{path.name}:{problem.line}: {problem.desc}"
        for path in files
        for problem in linter.run(path.read_text(), config, str(path))
    ]
    assert problems == []


def test_compose_file_follows_the_compose_specification() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_manifests_follow_the_schemas() -> None:
    documents = k8s_documents()
    kinds = {document["kind"] for _, document in documents}
    assert {"StatefulSet", "Deployment", "Service", "Namespace"} <= kinds
    for name, document in documents:
        try:
            kubernetes_validate.validate(document, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{name}: {document['kind']}: {error}")
    # The validation is real: a misspelt field is refused.
    _, deployment = next(d for d in documents if d[1]["kind"] == "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for generator in kustomization["configMapGenerator"]:
        for file in generator["files"]:
            assert (K8S / file).is_file()


def kafka_settings_compose() -> dict[str, str]:
    compose = yaml.safe_load(COMPOSE.read_text())
    brokers = [name for name in compose["services"] if name.startswith("kafka-")]
    assert len(brokers) == 3
    settings: dict[str, str] = compose["services"]["kafka-1"]["environment"]
    return settings


def test_kafka_cluster_has_three_brokers_rf3_and_min_isr_2() -> None:
    compose = kafka_settings_compose()
    [kafka] = [
        d
        for _, d in k8s_documents()
        if d["metadata"]["name"] == "kafka" and d["kind"] == "StatefulSet"
    ]
    assert kafka["spec"]["replicas"] == 3
    k8s_env = {
        item["name"]: item["value"]
        for item in kafka["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    for settings in (compose, k8s_env):
        assert settings["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert settings["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert settings["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert settings["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        assert settings["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert len(settings["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == 3


def pantau_commands() -> dict[str, list[list[str]]]:
    """Every Pantau command line in the compose file and the manifests, by
    deployment kind."""
    compose = yaml.safe_load(COMPOSE.read_text())
    from_compose = [
        service["command"]
        for service in compose["services"].values()
        if str(service.get("image", "")).startswith("${PANTAU_IMAGE")
    ]
    from_k8s = []
    for _, document in k8s_documents():
        if document["kind"] not in ("Deployment", "StatefulSet"):
            continue
        container = document["spec"]["template"]["spec"]["containers"][0]
        if container["image"] != "pantau:latest":
            continue
        if container.get("command") == ["sh", "-c"]:
            line = container["args"][0]
            line = re.sub(r"\$\{HOSTNAME##\*-\}/\$\{PANTAU_SHARDS\}", "0/2", line)
            words = line.split()
            assert words[:3] == ["exec", "pantau", "--config"]
            from_k8s.append(words[4:])
        else:
            from_k8s.append(container["args"])
    return {"compose": from_compose, "k8s": from_k8s}


def test_every_tier_runs_a_command_pantau_accepts() -> None:
    parser = build_parser()
    for kind, commands in pantau_commands().items():
        assert {command[0] for command in commands} == TIERS, kind
        for command in commands:
            args = parser.parse_args(["--config", "/etc/pantau/pantau.yaml", *command])
            assert args.action == "run", (kind, command)


def test_mounted_configurations_load() -> None:
    for path in (INFRA / "compose" / "pantau.yaml", K8S / "pantau.yaml"):
        config = load_config(
            path,
            environ={
                "PANTAU__KAFKA__BOOTSTRAP_SERVERS": "kafka-1:9092",
                "PANTAU__CLICKHOUSE__URL": "http://clickhouse:8123",
            },
        )
        assert config.kafka.replication_factor == 3
        assert config.cameras


def test_image_copies_every_package_and_runs_pantau() -> None:
    dockerfile = (INFRA / "docker" / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, re.M))
    assert copied == {
        "pantau",
        "producers",
        "inference",
        "stream_apps",
        "schemas",
        "infra",
    }
    assert 'ENTRYPOINT ["pantau", "--config", "/etc/pantau/pantau.yaml"]' in (
        dockerfile
    )
