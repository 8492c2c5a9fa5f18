"""Benchmark only: an inference worker whose analyzer replays recorded
detections, started by `pantau bench city`.

    python -m inference.replay_worker --config FILE --recorded FILE
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from inference.replay import ReplayAnalyzer
from infra.embedded import resolve_endpoints
from pantau.config_loader import load_config
from pantau.logs import configure_logging
from pantau.runtime import install_stop_handlers
from pantau.services import build_inference_worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.replay_worker")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--recorded", type=Path, required=True)
    args = parser.parse_args(argv)
    configure_logging("INFO")
    config = load_config(args.config)
    stop = threading.Event()
    install_stop_handlers(stop, "inference")
    worker, tracker = build_inference_worker(
        config,
        resolve_endpoints(config),
        stop,
        analyzer=ReplayAnalyzer(args.recorded),
    )
    worker.run()
    tracker.flush(60.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
