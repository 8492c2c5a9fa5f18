"""The configuration schema: one frozen, strictly checked model per section.

Every model rejects unknown keys, describes and bounds each field, keeps
secrets in ``SecretStr`` and never echoes a rejected input in pydantic's own
error text. Loading YAML and environment overrides lives in
``pantau.config_loader``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from datetime import datetime, time
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from pantau.config_alerting import AlertingConfig
from pantau.config_base import Section as _Section
from pantau.config_base import url_scheme as _scheme
from pantau.redact import looks_secret, redact_url

__all__ = [
    "DUPLICATE_CAMERA_ID",
    "ActiveHours",
    "CameraConfig",
    "ClickHouseConfig",
    "GroundCalibration",
    "KafkaConfig",
    "PantauConfig",
    "PipelineConfig",
    "RegionConfig",
]

# pydantic error type raised when two cameras share an id.
DUPLICATE_CAMERA_ID = "duplicate_camera_id"

_Unit = Annotated[float, Field(ge=0.0, le=1.0)]
_Finite = Annotated[float, Field(allow_inf_nan=False)]
_Pixel = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
_Side = Annotated[int, Field(ge=1, le=16384)]

_HH_MM = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


class KafkaConfig(_Section):
    """Where the Kafka cluster and Schema Registry are and how to reach them."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    _url_fields: ClassVar[frozenset[str]] = frozenset({"schema_registry_url"})

    # Properties with typed fields of their own; client_properties must not
    # set them a second time.
    _TYPED_PROPERTIES: ClassVar[frozenset[str]] = frozenset(
        {
            "bootstrap.servers",
            "metadata.broker.list",
            "security.protocol",
            "sasl.mechanism",
            "sasl.mechanisms",
            "sasl.username",
            "sasl.password",
            "ssl.ca.location",
        }
    )

    bootstrap_servers: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "Comma-separated host:port list of the Kafka brokers. Unset means the "
            "embedded broker started by `pantau infra up`."
        ),
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = (
        Field(default="PLAINTEXT", description="librdkafka security.protocol.")
    )
    sasl_mechanism: str | None = Field(
        default=None,
        min_length=1,
        description="librdkafka sasl.mechanism, e.g. PLAIN or SCRAM-SHA-512.",
    )
    sasl_username: str | None = Field(
        default=None, min_length=1, description="SASL user name."
    )
    sasl_password: SecretStr | None = Field(default=None, description="SASL password.")
    ssl_ca_location: str | None = Field(
        default=None,
        min_length=1,
        description="Path of the CA certificate bundle that signed the brokers.",
    )
    client_properties: dict[str, str | SecretStr] = Field(
        default_factory=dict,
        description=(
            "Extra librdkafka properties passed through verbatim. Values of keys "
            "naming a password, secret, token, key or auth are kept as secrets."
        ),
    )
    schema_registry_url: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "http(s) URL of the Schema Registry. Unset means the embedded one."
        ),
    )
    schema_registry_basic_auth: SecretStr | None = Field(
        default=None, description="Schema Registry credentials as 'user:password'."
    )
    topic_prefix: str = Field(
        default="",
        max_length=100,
        pattern=r"^[a-zA-Z0-9._-]*$",
        description="Prefix of every topic name, to share one cluster.",
    )
    default_partitions: int = Field(
        default=3, ge=1, le=1000, description="Partitions of topics Pantau creates."
    )
    replication_factor: int = Field(
        default=1, ge=1, le=10, description="Replication of topics Pantau creates."
    )
    frames_retention_ms: int = Field(
        default=3_600_000,
        ge=60_000,
        description="retention.ms of the frames topic; frames are bulky.",
    )

    @field_validator("client_properties", mode="before")
    @classmethod
    def _properties_as_strings(cls, value: object) -> object:
        if not isinstance(value, Mapping):
            return value
        properties: dict[str, str | SecretStr] = {}
        for key, raw in value.items():
            text = _property_text(str(key), raw)
            properties[str(key)] = SecretStr(text) if looks_secret(str(key)) else text
        return properties

    @field_validator("client_properties")
    @classmethod
    def _no_typed_properties(
        cls, value: dict[str, str | SecretStr]
    ) -> dict[str, str | SecretStr]:
        clashes = sorted(cls._TYPED_PROPERTIES.intersection(value))
        if clashes:
            raise ValueError(
                f"{', '.join(clashes)} must be set through the matching kafka "
                "field (bootstrap_servers, security_protocol, sasl_*, "
                "ssl_ca_location), not client_properties"
            )
        return value

    @field_validator("schema_registry_url")
    @classmethod
    def _registry_scheme(cls, value: str | None) -> str | None:
        if value is not None and _scheme(value) not in {"http", "https"}:
            raise ValueError(
                f"expected an http:// or https:// URL, got {redact_url(value)!r}"
            )
        return value

    @field_validator("schema_registry_basic_auth")
    @classmethod
    def _basic_auth_form(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and ":" not in value.get_secret_value():
            raise ValueError("expected 'user:password' (the value has no ':')")
        return value

    @model_validator(mode="after")
    def _sasl_needs_sasl_protocol(self) -> KafkaConfig:
        uses_sasl = self.sasl_username is not None or self.sasl_password is not None
        if uses_sasl and not self.security_protocol.startswith("SASL_"):
            raise ValueError(
                "sasl_username/sasl_password are set, so security_protocol must be "
                f"SASL_PLAINTEXT or SASL_SSL, got {self.security_protocol}"
            )
        return self

    def client_config(self, bootstrap: str) -> dict[str, str]:
        """Build the librdkafka configuration, secrets revealed.

        ``bootstrap`` is the broker list to use: ``bootstrap_servers`` or the
        address of the embedded broker. The result is for client constructors
        only; never log it.
        """
        config = {
            "bootstrap.servers": bootstrap,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism is not None:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username is not None:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_location is not None:
            config["ssl.ca.location"] = self.ssl_ca_location
        for key, value in self.client_properties.items():
            config[key] = (
                value.get_secret_value() if isinstance(value, SecretStr) else value
            )
        return config


def _property_text(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, str | int | float):
        return str(value)
    raise ValueError(
        f"property {key!r} must be a string, number or boolean, "
        f"got a {type(value).__name__}"
    )


class ClickHouseConfig(_Section):
    """Which ClickHouse server (or in-process chDB) holds the results."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    _url_fields: ClassVar[frozenset[str]] = frozenset({"url"})

    url: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "http:// or https:// URL of a ClickHouse server, or chdb:///abs/path "
            "for in-process chDB (single-process tools and tests). Unset means "
            "the embedded chDB HTTP server started by `pantau infra up`."
        ),
    )
    user: str = Field(default="default", min_length=1, description="ClickHouse user.")
    password: SecretStr = Field(
        default=SecretStr(""), description="Password of the ClickHouse user."
    )
    database: str = Field(
        default="pantau",
        max_length=64,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Database holding Pantau's tables.",
    )
    connect_timeout_s: float = Field(
        default=10, gt=0, le=300, description="Connection timeout in seconds."
    )
    send_receive_timeout_s: float = Field(
        default=60, gt=0, le=3600, description="Per-request timeout in seconds."
    )
    detections_ttl_days: int | None = Field(
        default=90,
        ge=1,
        le=36_500,
        description="Detection events older than this many days (by capture "
        "time) are deleted by ClickHouse; null keeps them for ever. Window "
        "aggregates are kept.",
    )

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return value
        scheme = _scheme(value)
        if scheme in {"http", "https"}:
            return value
        if scheme == "chdb":
            if not value[len("chdb://") :].startswith("/"):
                raise ValueError(
                    "expected chdb:///absolute/path (three slashes), "
                    f"got {redact_url(value)!r}"
                )
            return value
        raise ValueError(
            f"expected an http://, https:// or chdb:/// URL, got {redact_url(value)!r}"
        )

    @property
    def chdb_path(self) -> Path | None:
        """The chDB data directory when ``url`` is ``chdb:///...``, else None."""
        if self.url is None or _scheme(self.url) != "chdb":
            return None
        return Path(self.url[len("chdb://") :])


class RegionConfig(_Section):
    """Administrative area a camera watches, for aggregation and reports."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    city: str = Field(min_length=1, max_length=100, description="City (kota).")
    kecamatan: str = Field(
        min_length=1, max_length=100, description="District (kecamatan)."
    )
    kelurahan: str = Field(
        min_length=1, max_length=100, description="Urban village (kelurahan)."
    )


class ActiveHours(_Section):
    """Local time-of-day window in which a camera is sampled.

    ``start`` is included and ``end`` excluded; ``start == end`` means all day
    and ``start > end`` crosses midnight (22:00-06:00). YAML takes "HH:MM" or
    "HH:MM:SS"; "24:00" is accepted as an end meaning midnight.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    start: time = Field(default=time(0, 0), description="Local start, included.")
    end: time = Field(default=time(0, 0), description="Local end, excluded.")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _parse_clock(cls, value: object) -> object:
        if isinstance(value, time):
            if value.tzinfo is not None:
                raise ValueError(
                    "expected a local time without a UTC offset (the camera's "
                    f"timezone applies), got {value.isoformat()}"
                )
            return value
        if not isinstance(value, str):
            # pydantic would read a number as seconds since midnight, and YAML
            # 1.1 reads an unquoted 06:00 as the number 360.
            raise ValueError(
                f"expected a time as 'HH:MM' text, got {type(value).__name__} {value!r}"
            )
        match = _HH_MM.match(value.strip())
        if match is None:
            raise ValueError(f"expected 'HH:MM' or 'HH:MM:SS', got {value!r}")
        hour, minute, second = (int(part or 0) for part in match.groups())
        if (hour, minute, second) == (24, 0, 0):
            return time(0, 0)
        if hour > 23 or minute > 59 or second > 59:
            raise ValueError(f"expected a time from 00:00 to 23:59:59, got {value!r}")
        return time(hour, minute, second)

    def contains(self, local: time) -> bool:
        """Whether the local wall-clock time ``local`` falls in the window."""
        local = local.replace(tzinfo=None)
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class GroundCalibration(_Section):
    """Four image points and where they lie on the ground, for a homography."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    image_points_xy: list[tuple[_Pixel, _Pixel]] = Field(
        min_length=4,
        max_length=4,
        description="Four points in pixels of a frame of size image_wh.",
    )
    ground_points_m: list[tuple[_Finite, _Finite]] = Field(
        min_length=4,
        max_length=4,
        description="The same four points on the ground plane, in metres.",
    )
    image_wh: tuple[_Side, _Side] = Field(
        description="Width and height in pixels of the frame image_points_xy use."
    )

    @model_validator(mode="after")
    def _usable_for_homography(self) -> GroundCalibration:
        width, height = self.image_wh
        for index, (x, y) in enumerate(self.image_points_xy):
            if x > width or y > height:
                raise ValueError(
                    f"image_points_xy[{index}] ({x:g}, {y:g}) lies outside the "
                    f"{width}x{height} frame given by image_wh"
                )
        for name in ("image_points_xy", "ground_points_m"):
            triple = _collinear_triple(getattr(self, name))
            if triple is not None:
                a, b, c = triple
                raise ValueError(
                    f"{name} points {a}, {b} and {c} are collinear; a homography "
                    "needs four points with no three on one line"
                )
        return self


def _collinear_triple(
    points: list[tuple[float, float]],
) -> tuple[int, int, int] | None:
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    extent = max(max(xs) - min(xs), max(ys) - min(ys))
    # Twice the triangle area, compared with the square of the point spread
    # so that the test does not depend on units.
    tolerance = 1e-6 * extent * extent
    for a, b, c in itertools.combinations(range(len(points)), 3):
        (ax, ay), (bx, by), (cx, cy) = points[a], points[b], points[c]
        cross = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if abs(cross) <= tolerance:
            return a, b, c
    return None


class CameraConfig(_Section):
    """One camera: where its stream is, where it stands, when to sample it."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    _url_fields: ClassVar[frozenset[str]] = frozenset({"source_url"})
    _SOURCE_SCHEMES: ClassVar[tuple[str, ...]] = (
        "file",
        "rtsp",
        "rtsps",
        "http",
        "https",
    )

    id: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
        description="Stable camera id: lower-case letters, digits, '_' and '-'.",
    )
    source_url: str = Field(
        min_length=1,
        description=(
            "Video file path or file://, rtsp://, rtsps://, http:// or https:// "
            "URL. May carry credentials; they are never shown."
        ),
    )
    region: RegionConfig = Field(description="Area the camera watches.")
    sample_interval_s: float = Field(
        default=1.0, gt=0, le=3600, description="Seconds between sampled frames."
    )
    active_hours: ActiveHours = Field(
        default_factory=ActiveHours, description="Local hours in which to sample."
    )
    timezone: str = Field(
        default="Asia/Jakarta", description="IANA time zone of active_hours."
    )
    loop: bool = Field(
        default=False, description="Restart a video file at its end (demos)."
    )
    group: str | None = Field(
        default=None,
        description="Name of a camera_groups entry whose settings this camera "
        "takes unless it sets them itself.",
    )
    source_kind: Literal["auto", "file", "stream", "snapshot"] = Field(
        default="auto",
        description="How to read source_url: a video file, a continuous stream "
        "(RTSP, HTTP MJPEG, HLS), or a JPEG snapshot URL polled every interval. "
        "auto: a file for paths, a snapshot for http(s) URLs ending in .jpg or "
        ".jpeg, else a stream.",
    )
    jpeg_quality: int | None = Field(
        default=None, ge=10, le=100, description="Overrides pipeline.jpeg_quality."
    )
    frame_max_side_px: int | None = Field(
        default=None,
        ge=64,
        le=7680,
        description="Overrides pipeline.frame_max_side_px.",
    )
    roi_polygon_xy: list[tuple[_Unit, _Unit]] | None = Field(
        default=None,
        min_length=3,
        max_length=256,
        description="Region of interest in normalised 0..1 image coordinates.",
    )
    ground_calibration: GroundCalibration | None = Field(
        default=None, description="Image-to-ground mapping for distances in metres."
    )

    @field_validator("source_url")
    @classmethod
    def _source_scheme(cls, value: str) -> str:
        scheme = _scheme(value)
        if scheme is not None and scheme not in cls._SOURCE_SCHEMES:
            allowed = ", ".join(f"{name}://" for name in cls._SOURCE_SCHEMES)
            raise ValueError(
                f"expected a file path or a {allowed} URL, got {redact_url(value)!r}"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown IANA time zone {value!r}; expected a name such as "
                "'Asia/Jakarta', 'Asia/Makassar' or 'UTC'"
            ) from None
        return value

    @field_validator("roi_polygon_xy")
    @classmethod
    def _roi_has_area(
        cls, value: list[tuple[float, float]] | None
    ) -> list[tuple[float, float]] | None:
        if value is None:
            return value
        doubled_area = sum(
            x0 * y1 - x1 * y0
            for (x0, y0), (x1, y1) in zip(value, value[1:] + value[:1], strict=True)
        )
        if abs(doubled_area) < 1e-9:
            raise ValueError(
                "the polygon has no area (its points are collinear or repeated); "
                "expected at least three points enclosing part of the image"
            )
        return value

    @property
    def display_url(self) -> str:
        """``source_url`` with credentials masked, for logs and screens."""
        return redact_url(self.source_url)

    @property
    def zone(self) -> ZoneInfo:
        """The camera's time zone."""
        return ZoneInfo(self.timezone)

    def is_active(self, at: datetime) -> bool:
        """Whether the aware instant ``at`` falls in the camera's active hours."""
        if at.tzinfo is None:
            raise ValueError(f"expected a timezone-aware datetime, got {at!r}")
        return self.active_hours.contains(at.astimezone(self.zone).time())


class CameraGroup(_Section):
    """Settings shared by a group of cameras (for example every mobility camera
    of a kecamatan); a camera's own value wins."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    sample_interval_s: float | None = Field(
        default=None, gt=0, le=3600, description="Seconds between sampled frames."
    )
    active_hours: ActiveHours | None = Field(
        default=None, description="Local hours in which to sample."
    )
    timezone: str | None = Field(default=None, description="IANA time zone.")
    jpeg_quality: int | None = Field(default=None, ge=10, le=100)
    frame_max_side_px: int | None = Field(default=None, ge=64, le=7680)
    source_kind: Literal["auto", "file", "stream", "snapshot"] | None = Field(
        default=None, description="How to read the cameras' source URLs."
    )


class ProducerConfig(_Section):
    """Behaviour of the frame samplers."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    max_frame_bytes: int = Field(
        default=1_000_000,
        ge=16_384,
        le=50_000_000,
        description="Largest frame message; bigger frames are downscaled until "
        "they fit (keep it below the topic's max.message.bytes).",
    )
    frozen_after_frames: int = Field(
        default=5,
        ge=2,
        le=10_000,
        description="Identical frames in a row after which a camera is FROZEN.",
    )
    reconnect_initial_s: float = Field(
        default=1.0, gt=0, le=600, description="First wait before reconnecting."
    )
    reconnect_max_s: float = Field(
        default=60.0, gt=0, le=3600, description="Longest wait between reconnects."
    )
    stream_stale_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="A stream that delivers no new frame for this long is reconnected.",
    )
    snapshot_timeout_s: float = Field(
        default=5.0, gt=0, le=120, description="HTTP timeout of snapshot requests."
    )
    buffer_max_kbytes: int = Field(
        default=262_144,
        ge=1024,
        le=2_097_151,
        description="Frames held in memory while the broker is unreachable; when "
        "full, sampling waits instead of dropping.",
    )


COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck",
    "boat", "traffic light", "fire hydrant", "stop sign", "parking meter", "bench",
    "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
    "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
    "skateboard", "surfboard", "tennis racket", "bottle", "wine glass", "cup",
    "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)  # fmt: skip


class DetectorConfig(_Section):
    """Which detector finds people and vehicles. ``nanodet`` (the default) runs
    the fetched NanoDet weights; ``hog`` needs no weights; ``torchscript`` and
    ``torch_export`` load an operator's own YOLO-class model from ``path``."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    kind: Literal["nanodet", "hog", "torchscript", "torch_export"] = Field(
        default="nanodet",
        description="Detector implementation: nanodet (COCO people and vehicles, "
        "weights from `pantau models fetch`), hog (OpenCV's people-only detector, "
        "no weights), torchscript (a torch.jit.save file) or torch_export (a "
        "torch.export.save .pt2 file).",
    )
    path: Path | None = Field(
        default=None, description="Model file for torchscript and torch_export."
    )
    layout: Literal["yolov8", "yolov5"] = Field(
        default="yolov8",
        description="Output layout: yolov8 (batch, 4 + classes, anchors) or "
        "yolov5 (batch, anchors, 5 + classes) with objectness.",
    )
    input_size_px: int = Field(
        default=640, ge=32, le=4096, description="Square model input, pixels."
    )
    class_names: tuple[str, ...] = Field(
        default=COCO_CLASSES, min_length=1, description="Model class labels."
    )
    score_threshold: float = Field(default=0.3, gt=0, lt=1)
    iou_threshold: float = Field(default=0.45, gt=0, lt=1)

    @model_validator(mode="before")
    @classmethod
    def _kind_shorthand(cls, data: Any) -> Any:
        return {"kind": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _path_for_files(self) -> DetectorConfig:
        if self.kind in {"torchscript", "torch_export"} and self.path is None:
            raise ValueError(f"kind {self.kind} needs path: the model file to load")
        return self


class FacesConfig(_Section):
    """Face detection (BlazeFace) and mask classification on every frame."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    enabled: bool = Field(
        default=True,
        description="Find faces and classify masks; weights from `pantau models "
        "fetch`. Faces need about 20 px or more to be found.",
    )
    min_score: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="Face score to keep; about 0.3-0.4 finds more masked faces.",
    )
    mask_threshold: float = Field(
        default=0.5, gt=0, lt=1, description="P(mask) at which a face counts masked."
    )


class PipelineConfig(_Section):
    """Tuning of the worker stages."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    window_size_s: int = Field(
        default=900, ge=60, le=86_400, description="Aggregation window in seconds."
    )
    window_grace_s: int = Field(
        default=300,
        ge=0,
        le=86_400,
        description="How long after a window's end (in event time) events are "
        "still counted; then the window is final and later events are late.",
    )
    window_hop_s: int = Field(
        default=60,
        ge=1,
        le=86_400,
        description="Rolling windows advance by this step; window_size_s must be "
        "a multiple. Lateness is judged per step: an event is late once event time "
        "is window_grace_s past the end of its step.",
    )
    rolling_windows: bool = Field(
        default=True,
        description="Also publish rolling windows of window_size_s every "
        "window_hop_s, once each, when final.",
    )
    window_heartbeat_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Longest wall-clock wait between two watermarks a detections "
        "partition sends to the region stage while it has events.",
    )
    window_idle_s: float = Field(
        default=120.0,
        gt=0,
        le=86_400,
        description="A detections partition silent this long (wall clock) stops "
        "holding region windows open.",
    )
    window_future_tolerance_s: int = Field(
        default=600,
        ge=0,
        le=86_400,
        description="Events captured further than this in the future (a camera "
        "with a wrong clock) go to the dead-letter topic instead of closing "
        "every open window.",
    )
    detector: DetectorConfig = Field(
        default_factory=DetectorConfig,
        description="The people and vehicle detector used by inference.",
    )
    faces: FacesConfig = Field(
        default_factory=FacesConfig, description="Faces and mask compliance."
    )
    distancing_threshold_m: float = Field(
        default=1.0,
        gt=0,
        le=10,
        description="People closer than this, in metres, violate distancing.",
    )
    publish_annotated: bool = Field(
        default=False,
        description="Also publish each analysed frame with boxes drawn and heads "
        "blurred to the annotated-frames topic.",
    )
    inference_batch_max: int = Field(
        default=8, ge=1, le=256, description="Most frames per inference batch."
    )
    jpeg_quality: int = Field(
        default=85, ge=10, le=100, description="JPEG quality of frames on Kafka."
    )
    frame_max_side_px: int = Field(
        default=1280,
        ge=64,
        le=7680,
        description="Frames are scaled down so their longer side is at most this.",
    )
    sink_batch_rows: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Rows per ClickHouse insert at most.",
    )
    sink_batch_interval_s: float = Field(
        default=1.0,
        ge=0.05,
        le=60,
        description="Longest wait before a partial batch is inserted.",
    )

    @model_validator(mode="after")
    def _hop_divides_window(self) -> PipelineConfig:
        if self.window_size_s % self.window_hop_s:
            raise ValueError(
                "window_size_s must be a multiple of window_hop_s: expected "
                f"window_size_s % window_hop_s == 0, got {self.window_size_s} % "
                f"{self.window_hop_s} = {self.window_size_s % self.window_hop_s}"
            )
        return self


class WebConfig(_Section):
    """The live monitoring page (``pantau web run``, part of ``pantau up``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    enabled: bool = Field(
        default=True, description="Whether `pantau up` serves the page."
    )
    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address to listen on; loopback by default. Put a reverse "
        "proxy with authentication in front before exposing it.",
    )
    port: int = Field(default=18080, ge=1, le=65535, description="HTTP port.")
    refresh_s: float = Field(
        default=5, ge=1, le=300, description="How often the page updates itself."
    )


class PantauConfig(_Section):
    """The whole configuration of one Pantau deployment."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    state_dir: Path = Field(
        default=Path(".state"),
        description="Embedded broker and chDB data; relative to the config file.",
    )
    cache_dir: Path = Field(
        default=Path(".cache"),
        description="Downloaded models and build artefacts; relative to the file.",
    )
    kafka: KafkaConfig = Field(
        default_factory=KafkaConfig, description="Kafka and Schema Registry."
    )
    clickhouse: ClickHouseConfig = Field(
        default_factory=ClickHouseConfig, description="Result store."
    )
    pipeline: PipelineConfig = Field(
        default_factory=PipelineConfig, description="Worker tuning."
    )
    producers: ProducerConfig = Field(
        default_factory=ProducerConfig, description="Frame sampler behaviour."
    )
    camera_groups: dict[str, CameraGroup] = Field(
        default_factory=dict, description="Named settings shared by cameras."
    )
    cameras: list[CameraConfig] = Field(
        default_factory=list, max_length=10_000, description="Cameras to sample."
    )
    alerting: AlertingConfig = Field(
        default_factory=AlertingConfig,
        description="Alert rules and webhook subscribers.",
    )
    web: WebConfig = Field(
        default_factory=WebConfig, description="The live monitoring page."
    )
    config_poll_s: float = Field(
        default=15,
        ge=0.1,
        le=3600,
        description="How often producers, inference and sinks look for a "
        "changed configuration file (cameras added, changed or removed).",
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_groups(cls, data: Any) -> Any:
        """Fill each camera's unset fields from its group."""
        if not isinstance(data, dict):
            return data
        groups = data.get("camera_groups") or {}
        cameras = data.get("cameras")
        if not isinstance(groups, dict) or not isinstance(cameras, list):
            return data
        merged = []
        for camera in cameras:
            group = (
                groups.get(camera.get("group")) if isinstance(camera, dict) else None
            )
            merged.append({**group, **camera} if isinstance(group, dict) else camera)
        return {**data, "cameras": merged}

    @model_validator(mode="after")
    def _groups_exist(self) -> PantauConfig:
        for index, camera in enumerate(self.cameras):
            if camera.group is not None and camera.group not in self.camera_groups:
                known = ", ".join(sorted(self.camera_groups)) or "none"
                raise ValueError(
                    f"cameras[{index}] ('{camera.id}'): group {camera.group!r} is "
                    f"not in camera_groups (defined: {known})"
                )
        return self

    @field_validator("cameras")
    @classmethod
    def _unique_ids(cls, value: list[CameraConfig]) -> list[CameraConfig]:
        first_index: dict[str, int] = {}
        for index, camera in enumerate(value):
            if camera.id in first_index:
                raise PydanticCustomError(
                    DUPLICATE_CAMERA_ID,
                    "camera id '{camera_id}' is used by cameras[{first}] and "
                    "cameras[{index}]; expected every id to be unique",
                    {
                        "camera_id": camera.id,
                        "first": first_index[camera.id],
                        "index": index,
                    },
                )
            first_index[camera.id] = index
        return value

    def camera(self, camera_id: str) -> CameraConfig:
        """The camera called ``camera_id``; KeyError naming the known ids."""
        for camera in self.cameras:
            if camera.id == camera_id:
                return camera
        known = ", ".join(repr(camera.id) for camera in self.cameras) or "none"
        raise KeyError(f"no camera {camera_id!r}; configured: {known}")
