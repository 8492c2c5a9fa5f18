"""Camera health helpers: frozen-feed detection and reconnect back-off."""

from __future__ import annotations

import random

import cv2
import numpy as np
import numpy.typing as npt

# Largest difference, in 8-bit grey levels, between two 32x32 thumbnails that
# still counts as the same picture. Re-encoding one image as JPEG moves a
# thumbnail pixel by at most about 2 levels; on the street footage of
# vtest.avi, frames 0.1 s apart always differ by 15 levels or more somewhere.
_SAME_PICTURE_MAX_DIFF = 3.0


def thumbnail(image_bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """A 32x32 grey thumbnail used to compare frames cheaply."""
    grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA)
    return np.asarray(small, np.float32)


class FrozenDetector:
    """Counts how many frames in a row showed the same picture."""

    def __init__(self, frozen_after_frames: int) -> None:
        self._frozen_after = frozen_after_frames
        self._previous: npt.NDArray[np.float32] | None = None
        self.repeats = 0

    def observe(self, image_bgr: npt.NDArray[np.uint8]) -> bool:
        """Record a frame; True when it shows the same picture as the last one."""
        current = thumbnail(image_bgr)
        same = (
            self._previous is not None
            and float(np.abs(current - self._previous).max()) <= _SAME_PICTURE_MAX_DIFF
        )
        self._previous = current
        self.repeats = self.repeats + 1 if same else 0
        return same

    @property
    def frozen(self) -> bool:
        """True once ``frozen_after_frames`` identical frames came in a row."""
        return self.repeats + 1 >= self._frozen_after


class Backoff:
    """Exponential back-off with +/-20% jitter, so that many cameras that failed
    together do not all retry in the same second."""

    def __init__(
        self, initial_s: float, max_s: float, rng: random.Random | None = None
    ) -> None:
        self._initial_s = initial_s
        self._max_s = max_s
        self._rng = rng or random.Random()
        self.attempts = 0

    def next_delay_s(self) -> float:
        """The wait before the next attempt; each call doubles it up to the cap."""
        base = min(self._max_s, self._initial_s * 2.0**self.attempts)
        self.attempts += 1
        return float(base * self._rng.uniform(0.8, 1.2))

    def reset(self) -> None:
        """Start again from the initial wait after a success."""
        self.attempts = 0
