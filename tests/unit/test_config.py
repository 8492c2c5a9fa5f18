"""Configuration schema, YAML/environment loading and error reporting."""

from __future__ import annotations

import pickle
import textwrap
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from pantau.config import (
    ActiveHours,
    CameraConfig,
    ClickHouseConfig,
    GroundCalibration,
    KafkaConfig,
    PantauConfig,
    RegionConfig,
)
from pantau.config_check import check_config_file
from pantau.config_loader import (
    ConfigError,
    ConfigProblem,
    default_demo_config,
    load_config,
)
from pantau.redact import redact_url

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "pantau" / "pantau.example.yaml"
DEMO_VIDEO = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
SECRET = "Zebra-S3cr3t-9917"

CAMERA = """\
cameras:
  - id: jkt-001
    source_url: /videos/a.mp4
    region: {city: Jakarta, kecamatan: Gambir, kelurahan: Gambir}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pantau.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(path: Path | None, environ: dict[str, str]) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ)
    return caught.value.problems


def region() -> RegionConfig:
    return RegionConfig(city="Jakarta", kecamatan="Gambir", kelurahan="Gambir")


# The example file -------------------------------------------------------------


def test_example_file_loads() -> None:
    config = load_config(EXAMPLE, {})

    assert config.kafka.bootstrap_servers is None
    assert config.clickhouse.url is None
    assert config.state_dir == EXAMPLE.parent / ".state"
    camera = config.camera("demo-vtest")
    assert camera.source_url == DEMO_VIDEO
    assert camera.loop
    assert camera.active_hours == ActiveHours(start=time(6), end=time(22))
    assert camera.timezone == "Asia/Jakarta"
    assert camera.roi_polygon_xy is not None
    assert camera.ground_calibration is not None
    assert check_config_file(EXAMPLE, {}) == []


def test_default_demo_config() -> None:
    config = default_demo_config(Path(DEMO_VIDEO))

    camera = config.camera("demo-vtest")
    assert (camera.source_url, camera.loop, camera.sample_interval_s) == (
        DEMO_VIDEO,
        True,
        0.5,
    )
    assert camera.region == region()


def test_no_file_means_defaults_relative_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    config = load_config(None, {})

    assert config.cameras == []
    assert config.state_dir == tmp_path / ".state"
    assert config.cache_dir == tmp_path / ".cache"


def test_relative_dirs_follow_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "p.yaml"
    path.write_text("state_dir: data/state\ncache_dir: /var/cache/pantau\n")

    config = load_config(path, {})

    assert config.state_dir == tmp_path / "conf" / "data" / "state"
    assert config.cache_dir == Path("/var/cache/pantau")


# Problems and their lines -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "location", "line", "fragment"),
    [
        ("statedir: x\n", "statedir", 1, "did you mean 'state_dir'"),
        ("kafka:\n  topic_prefix: x\n  partitions: 3\n", "kafka.partitions", 3, ""),
        (
            CAMERA + "    sample_intervals: 2\n",
            "cameras[0].sample_intervals",
            5,
            "did you mean 'sample_interval_s'",
        ),
        (
            CAMERA + "    active_hours: {start: '06:00', stop: '07:00'}\n",
            "cameras[0].active_hours.stop",
            5,
            "expected one of: start, end",
        ),
    ],
)
def test_unknown_key_is_rejected_with_its_line(
    tmp_path: Path, text: str, location: str, line: int, fragment: str
) -> None:
    [problem] = problems_of(write(tmp_path, text), {})

    assert (problem.location, problem.line) == (location, line)
    assert "unknown key" in problem.message
    assert fragment in problem.message


def test_several_problems_are_reported_together(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        kafka:
          default_partitions: 0
          security_protocol: TLS
        pipeline:
          jpeg_quality: 101
        cameras:
          - id: jkt-001
            source_url: /videos/a.mp4
            region: {city: Jakarta, kecamatan: Gambir, kelurahan: Gambir}
          - id: jkt-012
            source_url: /videos/b.mp4
            region: {city: Jakarta, kecamatan: Gambir}
            sample_interval_s: -5
        """,
    )

    problems = problems_of(path, {})

    found = {(p.location, p.line) for p in problems}
    assert found == {
        ("kafka.default_partitions", 2),
        ("kafka.security_protocol", 3),
        ("pipeline.jpeg_quality", 5),
        ("cameras[1].region.kelurahan", 12),
        ("cameras[1].sample_interval_s", 13),
    }
    lines = check_config_file(path, {})
    expected = "cameras[1] ('jkt-012').sample_interval_s: must be > 0, got -5"
    assert f"{path}:13: {expected}" in lines
    assert f"{path}:5: pipeline.jpeg_quality: must be <= 100, got 101" in lines
    assert any("expected 'PLAINTEXT'" in line and "got 'TLS'" in line for line in lines)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("kafka: [1\n", 2, "YAML syntax error"),
        ("kafka: {}\nkafka: {}\n", 2, "appears twice (lines 1 and 2)"),
        ("- 1\n", 1, "expected a mapping of sections"),
    ],
)
def test_yaml_level_problems_have_lines(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    [problem] = problems_of(write(tmp_path, text), {})

    assert problem.line == line
    assert fragment in problem.message


def test_missing_file_suggests_config_init(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"

    [problem] = problems_of(path, {})

    assert str(path) in problem.message
    assert "pantau config init" in problem.message


def test_duplicate_camera_id_points_at_the_repeat(tmp_path: Path) -> None:
    text = CAMERA + CAMERA.removeprefix("cameras:\n") + "    sample_interval_s: 0\n"

    problems = problems_of(write(tmp_path, text), {})

    duplicate = next(p for p in problems if "already used" in p.message)
    assert (duplicate.location, duplicate.line) == ("cameras[1].id", 5)
    assert "'jkt-001'" in duplicate.message
    # The other problem of the same camera is reported alongside it.
    assert any(p.location == "cameras[1].sample_interval_s" for p in problems)


def test_duplicate_camera_id_in_python() -> None:
    camera = CameraConfig(id="a", source_url="/v.mp4", region=region())

    with pytest.raises(ValidationError, match="camera id 'a' is used by"):
        PantauConfig(cameras=[camera, camera])


def test_bad_timezone_names_the_zone(tmp_path: Path) -> None:
    path = write(tmp_path, CAMERA + "    timezone: Asia/Jakata\n")

    [problem] = problems_of(path, {})

    assert (problem.location, problem.line) == ("cameras[0].timezone", 5)
    assert "'Asia/Jakata'" in problem.message


def test_anchors_and_merge_keys(tmp_path: Path) -> None:
    text = CAMERA.replace("region: {", "region: &gambir {") + (
        "  - id: jkt-002\n"
        "    source_url: /videos/b.mp4\n"
        "    region: {<<: *gambir, kelurahan: Kebon Kelapa}\n"
    )

    config = load_config(write(tmp_path, text), {})

    assert config.cameras[1].region == RegionConfig(
        city="Jakarta", kecamatan="Gambir", kelurahan="Kebon Kelapa"
    )


def test_config_error_survives_pickling(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "pipeline: {jpeg_quality: 5}\n"), {})

    copy = pickle.loads(pickle.dumps(caught.value))

    assert copy.problems == caught.value.problems
    assert str(copy) == str(caught.value)


def test_camera_lookup_names_known_ids(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CAMERA), {})

    with pytest.raises(KeyError, match="'jkt-001'"):
        config.camera("jkt-999")


# Environment overrides -------------------------------------------------------------


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "kafka:\n  bootstrap_servers: file:9092\n  topic_prefix: jkt.\n" + CAMERA,
    )
    environ = {
        "PANTAU__KAFKA__BOOTSTRAP_SERVERS": "10.0.0.5:9092",
        "pantau__pipeline__window_size_s": "600",
        "PANTAU__CAMERAS__0__ACTIVE_HOURS__START": "06:00",
        "PANTAU__CAMERAS__0__LOOP": "true",
        "PANTAU__KAFKA__CLIENT_PROPERTIES__SOCKET_TIMEOUT_MS": "30000",
        "PANTAU__CLICKHOUSE__URL": "",
        "PANTAU_UNRELATED": "ignored",
    }

    config = load_config(path, environ)

    assert config.kafka.bootstrap_servers == "10.0.0.5:9092"
    assert config.kafka.topic_prefix == "jkt."
    assert config.pipeline.window_size_s == 600
    assert config.cameras[0].active_hours.start == time(6)
    assert config.cameras[0].loop is True
    assert config.kafka.client_properties == {"socket.timeout.ms": "30000"}
    assert config.clickhouse.url is None


@pytest.mark.parametrize(
    ("environ", "location", "fragment"),
    [
        (
            {"PANTAU__CAMERAS__0__SAMPLE_INTERVAL_S": "-5"},
            "cameras[0].sample_interval_s",
            "must be > 0, got -5",
        ),
        ({"PANTAU__KAFKA__PARTITIONS": "3"}, "kafka.partitions", "unknown key"),
        ({"PANTAU__CAMERAS__3__LOOP": "true"}, "cameras[3].loop", "does not exist"),
        ({"PANTAU__PIPELINE__JPEG_QUALITY": "[1"}, "pipeline.jpeg_quality", "YAML"),
    ],
)
def test_invalid_environment_value_is_reported_as_such(
    tmp_path: Path, environ: dict[str, str], location: str, fragment: str
) -> None:
    path = write(tmp_path, CAMERA + "    sample_interval_s: 2\n")

    [problem] = problems_of(path, environ)

    [name] = environ
    assert (problem.location, problem.line) == (location, None)
    assert fragment in problem.message
    assert f"from environment {name}" in problem.message or (
        f"from {name}" in problem.message
    )
    assert check_config_file(path, environ)[0].startswith(f"{path}: ")


# Secrets ---------------------------------------------------------------------------


def test_secrets_never_appear_in_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""\
        kafka:
          sasl_pasword: {SECRET}
          client_properties:
            ssl.key.password: {SECRET}
        clickhouse:
          password: {SECRET}
        cameras:
          - id: jkt-001
            source_url: rtsp://admin:{SECRET}@10.0.0.7/s?token={SECRET}&ch=1
            region: {{city: Jakarta, kecamatan: Gambir, kelurahan: Gambir}}
            sample_interval_s: -5
          - id: jkt-002
            source_url: ftp://admin:{SECRET}@10.0.0.8/s
            region: {{city: Jakarta, kecamatan: Gambir, kelurahan: Gambir}}
        """,
    )
    environ = {
        "PANTAU__CLICKHOUSE__PASSWORD": SECRET,
        "PANTAU__KAFKA__SASL_PASSWORD": SECRET,
        "PANTAU__KAFKA__SCHEMA_REGISTRY_BASIC_AUTH": SECRET,
    }

    with pytest.raises(ConfigError) as caught:
        load_config(path, environ)

    text = "\n".join([str(caught.value), *check_config_file(path, environ)])
    assert SECRET not in text
    assert "ftp://***@10.0.0.8/s" in text
    assert "sasl_password" in text  # the typo is reported, its value is not


def test_secrets_never_appear_in_repr(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""\
        kafka:
          security_protocol: SASL_SSL
          sasl_username: pantau
          sasl_password: {SECRET}
          schema_registry_url: https://reg:{SECRET}@registry:8081
          client_properties: {{ssl.key.password: {SECRET}, client.rack: r1}}
        clickhouse:
          url: https://ch:{SECRET}@clickhouse:8443
        cameras:
          - id: jkt-001
            source_url: rtsp://admin:{SECRET}@10.0.0.7/s?token={SECRET}&ch=1
            region: {{city: Jakarta, kecamatan: Gambir, kelurahan: Gambir}}
        """,
    )

    config = load_config(path, {"PANTAU__CLICKHOUSE__PASSWORD": SECRET})

    assert SECRET not in repr(config)
    assert SECRET not in str(config)
    camera = config.cameras[0]
    assert camera.display_url == "rtsp://***@10.0.0.7/s?token=***&ch=1"
    assert camera.source_url.count(SECRET) == 2
    assert config.clickhouse.password.get_secret_value() == SECRET
    client = config.kafka.client_config("broker:9092")
    assert client["sasl.password"] == SECRET
    assert client["ssl.key.password"] == SECRET
    assert client["client.rack"] == "r1"


def test_pydantic_errors_hide_inputs() -> None:
    with pytest.raises(ValidationError) as caught:
        CameraConfig(
            id="a",
            source_url=f"gopher://u:{SECRET}@h/",
            region=region(),
            sample_interval_s=-1,
        )

    assert SECRET not in str(caught.value)
    assert "gopher://***@h/" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://admin:pw@10.0.0.7:554/s", "rtsp://***@10.0.0.7:554/s"),
        ("rtsp://admin:p@ss/w@10.0.0.7/s", "rtsp://***@10.0.0.7/s"),
        ("https://h/x?api_key=1&ch=2#t", "https://h/x?api_key=***&ch=2#t"),
        ("https://h/x?Token=1&auth=2&pw", "https://h/x?Token=***&auth=***&pw"),
        ("http://h:80/plain", "http://h:80/plain"),
        ("/videos/a@b.mp4", "/videos/a@b.mp4"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# Field rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "local", "inside"),
    [
        ("00:00", "00:00", time(3), True),
        ("06:00", "22:00", time(6), True),
        ("06:00", "22:00", time(22), False),
        ("06:00", "22:00", time(5, 59), False),
        ("22:00", "06:00", time(23, 30), True),
        ("22:00", "06:00", time(2), True),
        ("22:00", "06:00", time(6), False),
        ("22:00", "06:00", time(12), False),
        ("18:00", "24:00", time(23, 59), True),
        ("6:30", "7:00:30", time(7), True),
    ],
)
def test_active_hours(start: str, end: str, local: time, inside: bool) -> None:
    hours = ActiveHours.model_validate({"start": start, "end": end})

    assert hours.contains(local) is inside


@pytest.mark.parametrize("value", [360, "25:00", "6", time(6, tzinfo=UTC)])
def test_active_hours_rejects(value: object) -> None:
    with pytest.raises(ValidationError):
        ActiveHours.model_validate({"start": value})


def test_unquoted_times_in_yaml_are_not_numbers(tmp_path: Path) -> None:
    text = CAMERA + "    active_hours: {start: 22:00, end: 06:00}\n"

    camera = load_config(write(tmp_path, text), {}).cameras[0]

    assert camera.active_hours == ActiveHours(start=time(22), end=time(6))
    jakarta_23h = datetime(2024, 1, 1, 16, tzinfo=UTC)  # 23:00 in UTC+7
    assert camera.is_active(jakarta_23h)
    assert not camera.is_active(datetime(2024, 1, 1, 5, tzinfo=UTC))


CALIBRATION = {
    "image_wh": (640, 480),
    "image_points_xy": [(10, 10), (600, 20), (620, 470), (20, 460)],
    "ground_points_m": [(0, 0), (10, 0), (10, 8), (0, 8)],
}


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({}, None),
        (
            {"ground_points_m": [(0, 0), (5, 0), (10, 0), (0, 8)]},
            "ground_points_m points 0, 1 and 2 are collinear",
        ),
        (
            {"image_points_xy": [(10, 10), (600, 20), (20, 460), (10, 10)]},
            "image_points_xy points 0, 1 and 3 are collinear",
        ),
        (
            {"image_points_xy": [(10, 10), (700, 20), (620, 470), (20, 460)]},
            "outside the 640x480 frame",
        ),
        ({"ground_points_m": [(0, 0), (10, 0), (10, 8)]}, "at least 4 items"),
    ],
)
def test_ground_calibration(changes: dict[str, object], fragment: str | None) -> None:
    data = {**CALIBRATION, **changes}

    if fragment is None:
        GroundCalibration.model_validate(data)
        return
    with pytest.raises(ValidationError, match=fragment):
        GroundCalibration.model_validate(data)


@pytest.mark.parametrize(
    ("roi", "fragment"),
    [
        ("[[0, 0], [1, 0], [1, 1]]", None),
        ("[[0, 0], [0.5, 0.5], [1, 1]]", "has no area"),
        ("[[0, 0], [1, 0]]", "expected at least 3 items, got a list of 2"),
        ("[[0, 0], [1.5, 0], [1, 1]]", "must be <= 1, got 1.5"),
    ],
)
def test_roi_polygon(tmp_path: Path, roi: str, fragment: str | None) -> None:
    path = write(tmp_path, CAMERA + f"    roi_polygon_xy: {roi}\n")

    if fragment is None:
        assert load_config(path, {}).cameras[0].roi_polygon_xy is not None
        return
    [problem] = problems_of(path, {})
    assert problem.line == 5
    assert fragment in problem.message


def test_calibration_problem_in_file_has_its_line(tmp_path: Path) -> None:
    text = CAMERA + textwrap.indent(
        textwrap.dedent(
            """\
            ground_calibration:
              image_wh: [640, 480]
              image_points_xy: [[10, 10], [600, 20], [620, 470], [20, 460]]
              ground_points_m: [[0, 0], [5, 0], [10, 0], [0, 8]]
            """
        ),
        "    ",
    )

    [problem] = problems_of(write(tmp_path, text), {})

    assert (problem.location, problem.line) == ("cameras[0].ground_calibration", 5)
    assert "collinear" in problem.message


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        (None, True),
        ("http://ch:8123", True),
        ("https://ch:8443", True),
        ("chdb:///var/lib/pantau", True),
        ("chdb://relative/dir", False),
        ("clickhouse://ch:9000", False),
    ],
)
def test_clickhouse_url(url: str | None, ok: bool) -> None:
    if ok:
        config = ClickHouseConfig(url=url)
        expected = Path("/var/lib/pantau") if url and url.startswith("chdb") else None
        assert config.chdb_path == expected
        return
    with pytest.raises(ValidationError, match="expected"):
        ClickHouseConfig(url=url)


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"sasl_username": "u"}, "security_protocol must be SASL_PLAINTEXT"),
        ({"client_properties": {"sasl.password": "x"}}, "sasl.password must be set"),
        ({"schema_registry_url": "registry:8081"}, "expected an http"),
        ({"schema_registry_basic_auth": SecretStr("nocolon")}, "user:password"),
        ({"topic_prefix": "a b"}, "pattern"),
    ],
)
def test_kafka_rules(fields: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        KafkaConfig.model_validate(fields)


def test_client_config_without_extras() -> None:
    config = KafkaConfig.model_validate(
        {"client_properties": {"enable.idempotence": True}}
    )

    assert config.client_config("b:9092") == {
        "bootstrap.servers": "b:9092",
        "security.protocol": "PLAINTEXT",
        "enable.idempotence": "true",
    }


def test_models_are_frozen() -> None:
    config = PantauConfig()

    with pytest.raises(ValidationError):
        config.pipeline.__setattr__("jpeg_quality", 50)
