"""Detection on real footage, event building, ROI and decode errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from inference.analysis import FrameAnalysis, FrameAnalyzer
from inference.annotate import annotate
from inference.bench import bench_inference
from inference.decode import FrameDecodeError, decode_jpeg
from inference.detections import FrameDetections
from inference.events import build_detection_event, detection_event_id
from inference.hog import HogPeopleDetector
from inference.roi import filter_by_roi
from pantau.config import CameraConfig, PipelineConfig
from producers.publisher import fit_jpeg
from schemas.codec import AvroCodec
from schemas.records import Frame, Region
from schemas.registry import LocalResolver

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
REGION: Region = {"city": "Jakarta", "kecamatan": "Gambir", "kelurahan": "Gambir"}

# People visible in vtest.avi, counted by hand, and what HOG may plausibly report:
# it misses partly hidden people and never reports more than are there plus one.
HAND_COUNTS = {0: 3, 300: 6, 600: 6}


def vtest_frame(index: int) -> npt.NDArray[np.uint8]:
    capture = cv2.VideoCapture(str(VTEST))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, image = capture.read()
    capture.release()
    assert ok, f"cannot read frame {index} of {VTEST}"
    return np.asarray(image, np.uint8)


@pytest.fixture(scope="module")
def detector() -> HogPeopleDetector:
    return HogPeopleDetector()


@pytest.mark.parametrize(("index", "people"), sorted(HAND_COUNTS.items()))
def test_hog_counts_people_on_real_footage(
    detector: HogPeopleDetector, index: int, people: int
) -> None:
    found = detector.detect(vtest_frame(index))
    assert 1 <= found.count("person") <= people + 1
    assert found.frame_wh == (768, 576)
    boxes = found.boxes_xyxy_px
    assert (boxes[:, 2] > boxes[:, 0]).all()
    assert (boxes[:, 3] > boxes[:, 1]).all()
    assert ((found.scores > 0) & (found.scores < 1)).all()


def test_hog_survives_a_jpeg_round_trip(detector: HogPeopleDetector) -> None:
    jpeg, frame_wh = fit_jpeg(vtest_frame(600), 1280, 85, 1_000_000)
    assert frame_wh == (768, 576)
    found = detector.detect(decode_jpeg(jpeg, max_bytes=1_000_000))
    assert found.count("person") >= 2


def test_fit_jpeg_shrinks_to_max_side() -> None:
    jpeg, frame_wh = fit_jpeg(vtest_frame(0), 384, 70, 1_000_000)
    assert frame_wh == (384, 288)
    assert decode_jpeg(jpeg, 1_000_000).shape == (288, 384, 3)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "not a decodable image"),
        (b"\xff\xd8\xff\xe0garbage", "not a decodable image"),
        (b"x" * 2000, "too large"),
    ],
)
def test_decode_errors_say_what_arrived(data: bytes, needle: str) -> None:
    with pytest.raises(FrameDecodeError, match=needle):
        decode_jpeg(data, max_bytes=1000)


def boxes(*xyxy: tuple[float, float, float, float]) -> FrameDetections:
    return FrameDetections(
        np.asarray(xyxy, np.float32).reshape(-1, 4),
        np.full(len(xyxy), 0.9, np.float32),
        ("person",) * len(xyxy),
        (100, 100),
    )


def test_roi_keeps_people_standing_inside() -> None:
    found = boxes((10, 10, 20, 40), (60, 10, 80, 90))
    left_half = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]
    kept = filter_by_roi(found, left_half)
    assert len(kept) == 1
    assert kept.boxes_xyxy_px[0].tolist() == [10, 10, 20, 40]
    assert len(filter_by_roi(found, None)) == 2


def test_event_is_deterministic_and_encodes() -> None:
    frame: Frame = {
        "camera_id": "jkt-001",
        "frame_seq": 3,
        "captured_at_ms": 1_767_225_600_000,
        "published_at_ms": 1_767_225_600_010,
        "width_px": 100,
        "height_px": 100,
        "content_type": "image/jpeg",
        "image": b"",
    }
    analysis = FrameAnalysis(
        boxes((10, 10, 20, 40), (60, 10, 80, 90)),
        np.array([True, False]),
        calibrated=True,
        model_versions={"people": "test/1"},
    )
    event = build_detection_event(frame, REGION, analysis, 1_767_225_600_200)
    assert event["event_id"] == detection_event_id("jkt-001", 1_767_225_600_000, 3)
    assert event["event_id"] != detection_event_id("jkt-001", 1_767_225_600_000, 4)
    assert event["counts"]["people"] == 2
    assert event["counts"]["distancing_violators"] == 1
    assert [d["violation"] for d in event["detections"]] == [True, False]
    assert event["calibrated"]
    assert event["detections"][1]["x_max"] == pytest.approx(0.8)
    codec = AvroCodec("pantau.detections", "detection_event", LocalResolver())
    decoded = codec.decode(codec.encode(event))
    assert decoded["counts"] == event["counts"]
    assert decoded["event_id"] == event["event_id"]


def test_analyzer_runs_detector_roi_and_distancing(detector: HogPeopleDetector) -> None:
    camera = CameraConfig.model_validate(
        {"id": "cam-1", "source_url": str(VTEST), "region": REGION}
    )
    analysis = FrameAnalyzer(detector, 1.0).analyze(vtest_frame(600), camera)
    assert not analysis.calibrated
    assert analysis.violations.shape == (len(analysis.objects),)
    assert analysis.model_versions == {"people": detector.version}
    nobody = FrameAnalyzer(detector, 1.0).analyze(
        vtest_frame(600),
        camera.model_copy(update={"roi_polygon_xy": [(0, 0), (0.01, 0), (0, 0.01)]}),
    )
    assert len(nobody.objects) == 0


def test_inference_benchmark_reports_every_batch_size(
    detector: HogPeopleDetector,
) -> None:
    figures, report = bench_inference(
        FrameAnalyzer(detector, 1.0), video=VTEST, frame_count=4, batch_sizes=[1, 2]
    )
    assert [f.batch_size for f in figures] == [1, 2]
    assert all(f.bare_fps > 0 and f.pipeline_fps > 0 for f in figures)
    assert "pipeline fps" in report


def test_configured_analyzer_counts_faces_and_masks(tmp_path: Path) -> None:
    from inference.detectors import build_analyzer
    from infra.models.faces_fetch import blazeface_dir

    cache_dir = Path(__file__).resolve().parents[2] / ".cache"
    if not blazeface_dir(cache_dir).exists():
        pytest.skip("face models not fetched; run `pantau models fetch`")
    analyzer = build_analyzer(PipelineConfig(), cache_dir)
    image = np.asarray(
        cv2.imread("/usr/share/doc/opencv-doc/examples/data/messi5.jpg"), np.uint8
    )
    analysis = analyzer.analyze(image, None)
    assert len(analysis.faces) == 1
    assert analysis.masked.tolist() == [False]
    event = build_detection_event(
        {
            "camera_id": "local",
            "frame_seq": 0,
            "captured_at_ms": 0,
            "published_at_ms": 0,
            "width_px": image.shape[1],
            "height_px": image.shape[0],
            "content_type": "image/jpeg",
            "image": b"",
        },
        REGION,
        analysis,
        0,
    )
    assert event["counts"]["faces"] == 1
    assert event["counts"]["unmasked"] == 1
    assert [
        d["mask_state"] for d in event["detections"] if d["class_name"] == "face"
    ] == ["UNMASKED"]
    assert set(analysis.model_versions) == {"objects", "faces", "masks"}
    picture = annotate(image, analysis)
    assert picture.shape == image.shape
