"""Record NanoDet's raw outputs from its original TensorFlow.js runtime as fixtures.

Run once (and again only when the model or the frames change)::

    python -m infra.models.nanodet_reference --tfjs-dir /tmp/tfjsref

It reads frames 0, 300 and 600 of OpenCV's `vtest.avi` (Debian `opencv-doc`) and
darknet's `dog.jpg` (Debian `darknet`, skipped when absent), runs
`infra/models/tfjs_reference.mjs` on them with pure-JavaScript TensorFlow.js, and
writes one small `.npz` per image into `tests/fixtures/nanodet/`: a sample of the
preprocessed input and a sample of rows of each output, in float32. Full outputs would
be 1.8 MB per image; every `ROW_STEP`-th anchor row checks the port as well.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from infra.models.fetch import fetch_nanodet

VTEST_AVI = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
DOG_JPG = Path("/usr/share/darknet/data/dog.jpg")
VTEST_FRAMES = (0, 300, 600)
FIXTURE_DIR = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "nanodet"
ROW_STEP = 7
INPUT_STEP = 8
_SCRIPT = Path(__file__).with_name("tfjs_reference.mjs")


def read_vtest_frame(index: int) -> npt.NDArray[np.uint8]:
    """Return frame `index` of vtest.avi as BGR, the way OpenCV decodes it."""
    capture = cv2.VideoCapture(str(VTEST_AVI))
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
    finally:
        capture.release()
    if not ok:
        raise RuntimeError(f"cannot read frame {index} of {VTEST_AVI}")
    return np.asarray(frame, dtype=np.uint8)


def reference_images() -> dict[str, npt.NDArray[np.uint8]]:
    """The BGR images the fixtures are recorded for, by fixture name."""
    images = {f"vtest_{i}": read_vtest_frame(i) for i in VTEST_FRAMES}
    if DOG_JPG.is_file():
        dog = cv2.imread(str(DOG_JPG), cv2.IMREAD_COLOR)
        images["dog"] = np.asarray(dog, dtype=np.uint8)
    return images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tfjs-dir",
        type=Path,
        required=True,
        help="folder where @tensorflow/tfjs-core, -converter and "
        "-backend-cpu are npm-installed",
    )
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache"))
    parser.add_argument("--out", type=Path, default=FIXTURE_DIR)
    args = parser.parse_args(argv)

    node = shutil.which("node")
    if node is None:
        parser.error("`node` is needed: install it with apt-get install -y nodejs")
    model_json = fetch_nanodet(args.cache_dir)
    images = reference_images()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nanodet-ref-") as work:
        work_dir = Path(work)
        listing = []
        for name, bgr in images.items():
            rgb = np.ascontiguousarray(bgr[:, :, ::-1])
            (work_dir / f"{name}.rgb").write_bytes(rgb.tobytes())
            listing.append(
                {"name": name, "width": rgb.shape[1], "height": rgb.shape[0]}
            )
        (work_dir / "images.json").write_text(json.dumps(listing))
        command = [
            node,
            str(_SCRIPT),
            str(args.tfjs_dir),
            str(model_json),
            str(work_dir),
        ]
        subprocess.run(command, check=True)
        shapes = json.loads((work_dir / "outputs.json").read_text())
        for name in images:
            arrays = _pack(work_dir, name, shapes[name])
            np.savez_compressed(args.out / f"{name}.npz", **arrays)
            print(f"wrote {args.out / name}.npz")
    return 0


def _pack(work_dir: Path, name: str, shapes: dict[str, list[int]]) -> dict[str, Any]:
    def read(suffix: str, shape: list[int]) -> npt.NDArray[np.float32]:
        raw = np.fromfile(work_dir / f"{name}.{suffix}.f32", dtype="<f4")
        return raw.reshape(shape)

    model_input = read("input", [1, 3, 416, 416])
    arrays: dict[str, Any] = {
        "input_sample": model_input[:, :, ::INPUT_STEP, ::INPUT_STEP].copy(),
        "input_step": np.array(INPUT_STEP),
        "row_step": np.array(ROW_STEP),
    }
    for output, shape in shapes.items():
        arrays[f"out_{output}"] = read(output, shape)[:, ::ROW_STEP].copy()
    return arrays


if __name__ == "__main__":
    sys.exit(main())
