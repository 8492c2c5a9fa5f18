"""Decode the images that arrive on the frames topic."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt


class FrameDecodeError(ValueError):
    """Bytes that do not decode to an image."""


def decode_jpeg(image: bytes, max_bytes: int) -> npt.NDArray[np.uint8]:
    """A BGR image from JPEG (or PNG) bytes."""
    if len(image) > max_bytes:
        raise FrameDecodeError(
            f"frame too large: expected at most {max_bytes} bytes, got {len(image)}"
        )
    decoded = None
    if image:
        try:
            decoded = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
        except cv2.error as error:
            raise FrameDecodeError(
                f"frame is not a decodable image: OpenCV said {error.err}"
            ) from error
    if decoded is None or decoded.size == 0:
        raise FrameDecodeError(
            f"frame is not a decodable image ({len(image)} bytes, starts with "
            f"{image[:4].hex() or 'nothing'}); expected JPEG data"
        )
    return np.asarray(decoded, np.uint8)
