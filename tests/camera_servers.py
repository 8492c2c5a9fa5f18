"""Real camera protocols on loopback, playing the OpenCV demo footage.

Test fixtures, so that the frame samplers can be pointed at a server that speaks
the protocol a city camera speaks, instead of at a file:

- `MjpegServer`: HTTP MJPEG (`/stream.mjpg`) and JPEG snapshots (`/snapshot.jpg`),
  with optional basic auth, a frozen feed and a corrupt snapshot, all in-process.
- `HlsServer`: a live HLS playlist that Debian's `ffmpeg` keeps writing.
- `RtspServer`: RTSP (H.264, RTP over TCP or UDP) from GStreamer's RTSP server in
  Debian packages, run by Debian's own Python, where the GObject bindings live.

Every server binds 127.0.0.1 on a free port chosen at construction, so its URL is
known before `start()` and stays the same across `restart()`. Use them as context
managers or call `stop()`: the external programs are also told to die with the
thread that started them, so a killed test run leaves no ffmpeg behind.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import os
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import quote, urlsplit

import cv2

from infra.ports import LOOPBACK, free_port

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
VTEST_FPS = 10.0

FFMPEG_HINT = "install ffmpeg with apt-get install -y ffmpeg"
RTSP_HINT = (
    "install GStreamer's RTSP server with apt-get install -y python3-gi "
    "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad"
)
# GStreamer's Python bindings are Debian's python3-gi, importable only by Debian's
# own interpreter, not by the project's virtualenv.
SYSTEM_PYTHON = "/usr/bin/python3"

BOUNDARY = "pantau-test-frame"

# Starts like a JPEG (SOI marker) but holds no image: decoders must reject it.
CORRUPT_JPEG = b"\xff\xd8" + b"this camera sent garbage instead of a frame " * 40


class ToolMissingError(RuntimeError):
    """An external program a camera server needs is not installed."""


class CameraServerError(RuntimeError):
    """A camera server did not come up."""


Credentials = tuple[str, str]


class _CameraServer:
    """Lifecycle shared by the servers: a fixed port, start/stop/restart, `with`."""

    default_path = "/"
    scheme = "http"

    def __init__(self, port: int | None, auth: Credentials | None) -> None:
        self.port = port if port is not None else free_port()
        self.auth = auth

    def url(self, path: str | None = None, *, credentials: bool = True) -> str:
        """The URL of `path` (the main stream by default), with the user and
        password in it when the server has auth and `credentials` is true."""
        userinfo = ""
        if self.auth is not None and credentials:
            user, password = self.auth
            userinfo = f"{quote(user, safe='')}:{quote(password, safe='')}@"
        path = self.default_path if path is None else path
        return f"{self.scheme}://{userinfo}{LOOPBACK}:{self.port}{path}"

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop serving and drop every open connection; clients see the camera go
        away. Safe to call twice."""
        self._halt(keep_files=False)

    def restart(self) -> None:
        """Stop, then serve again on the same port."""
        self._halt(keep_files=True)
        self.start()

    def _halt(self, *, keep_files: bool) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


# --- HTTP plumbing shared by MJPEG and HLS ----------------------------------------


class _LoopbackHttpServer(http.server.ThreadingHTTPServer):
    """A threaded HTTP server that remembers its open connections, so that stopping
    it can cut them like a camera losing power."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, port: int, handler: Callable[..., http.server.BaseHTTPRequestHandler]
    ) -> None:
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((LOOPBACK, port), handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # the client hung up first
                connection.shutdown(socket.SHUT_RDWR)

    def serve_in_thread(self, name: str) -> threading.Thread:
        # A short poll keeps stop() quick: shutdown() waits for the next poll.
        thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), name=name, daemon=True
        )
        thread.start()
        return thread

    def halt(self, thread: threading.Thread | None) -> None:
        self.stopping.set()
        self.shutdown()
        self.close_connections()
        self.server_close()
        if thread is not None:
            thread.join(timeout=5)


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    server_version = "PantauTestCamera/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Stay silent: pytest output is for the tests."""

    def reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


# --- MJPEG and snapshots ------------------------------------------------------------


@functools.cache
def encoded_frames(video: Path, count: int, quality: int) -> tuple[bytes, ...]:
    """The first `count` frames of `video` as JPEG, encoded once per process."""
    capture = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    frames: list[bytes] = []
    try:
        while len(frames) < count:
            ok, image = capture.read()
            if not ok:
                break
            ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                raise CameraServerError(f"OpenCV could not encode a frame of {video}")
            frames.append(jpeg.tobytes())
    finally:
        capture.release()
    if not frames:
        raise CameraServerError(
            f"no frames could be read from {video}; the demo footage comes with "
            "apt-get install -y opencv-doc"
        )
    return tuple(frames)


class _MjpegHttpServer(_LoopbackHttpServer):
    def __init__(self, camera: MjpegServer) -> None:
        self.camera = camera
        self.started_at = time.monotonic()
        super().__init__(camera.port, _MjpegHandler)

    def tick(self) -> int:
        """How many frame periods have passed since this run started."""
        return int((time.monotonic() - self.started_at) * self.camera.fps)

    def next_tick_at(self, tick: int) -> float:
        return self.started_at + (tick + 1) / self.camera.fps


class _MjpegHandler(_QuietHandler):
    def do_GET(self) -> None:
        httpd = cast(_MjpegHttpServer, self.server)
        camera = httpd.camera
        if not camera.accepts(self.headers.get("Authorization")):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="pantau test camera"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return

        path = urlsplit(self.path).path
        if path == "/snapshot.jpg":
            body = CORRUPT_JPEG if camera.corrupt_snapshot else None
            self.reply(200, "image/jpeg", body or camera.frame(httpd.tick()))
        elif path == "/stream.mjpg":
            camera.count_stream_request()
            self._stream(httpd)
        else:
            self.reply(
                404,
                "text/plain",
                b"this camera serves /stream.mjpg and /snapshot.jpg\n",
            )

    def _stream(self, httpd: _MjpegHttpServer) -> None:
        """One multipart part per frame period until the client or server leaves.

        FFmpeg's mpjpeg demuxer wants each part as `--boundary`, headers with a
        Content-Length, a blank line, the JPEG, then CRLF.
        """
        self.send_response(200)
        self.send_header(
            "Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        )
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()

        while not httpd.stopping.is_set():
            tick = httpd.tick()
            jpeg = httpd.camera.frame(tick)
            head = (
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                f"Content-Length: {len(jpeg)}\r\n\r\n"
            ).encode("ascii")
            try:
                self.wfile.write(head + jpeg + b"\r\n")
            except OSError:
                return  # the client went away, or stop() cut the connection
            httpd.stopping.wait(max(0.0, httpd.next_tick_at(tick) - time.monotonic()))


class MjpegServer(_CameraServer):
    """An IP camera over HTTP: `GET /stream.mjpg` streams
    `multipart/x-mixed-replace` JPEGs at `fps`, `GET /snapshot.jpg` returns the
    current frame.

    The first `frame_count` frames of `video` are encoded once and looped. With
    `auth=(user, password)` every request without those basic-auth credentials
    gets 401. `frozen` (the same frame forever) and `corrupt_snapshot` (snapshot
    bytes no decoder accepts) are attributes that may be flipped while serving.
    """

    default_path = "/stream.mjpg"

    def __init__(
        self,
        video: Path = VTEST,
        *,
        port: int | None = None,
        fps: float = VTEST_FPS,
        frame_count: int = 100,
        jpeg_quality: int = 80,
        auth: Credentials | None = None,
        frozen: bool = False,
        corrupt_snapshot: bool = False,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        super().__init__(port, auth)
        self.fps = fps
        self.frozen = frozen
        self.corrupt_snapshot = corrupt_snapshot
        self.frames = encoded_frames(video, frame_count, jpeg_quality)
        self._stream_requests = 0
        self._lock = threading.Lock()
        self._httpd: _MjpegHttpServer | None = None
        self._thread: threading.Thread | None = None
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            self._expected_authorization: str | None = f"Basic {token}"
        else:
            self._expected_authorization = None

    @property
    def stream_requests(self) -> int:
        """How many authorized `GET /stream.mjpg` this server has answered, across
        restarts: a sampler that reconnects shows up here."""
        with self._lock:
            return self._stream_requests

    def count_stream_request(self) -> None:
        with self._lock:
            self._stream_requests += 1

    def accepts(self, authorization: str | None) -> bool:
        """Whether a request with this Authorization header may see the camera."""
        expected = self._expected_authorization
        return expected is None or authorization == expected

    def frame(self, tick: int) -> bytes:
        """The JPEG on air during frame period `tick`."""
        return self.frames[0 if self.frozen else tick % len(self.frames)]

    def start(self) -> None:
        if self._httpd is not None:
            return
        self._httpd = _MjpegHttpServer(self)
        self._thread = self._httpd.serve_in_thread(f"mjpeg-camera-{self.port}")

    def _halt(self, *, keep_files: bool) -> None:
        if self._httpd is None:
            return
        self._httpd.halt(self._thread)
        self._httpd = None
        self._thread = None


# --- External programs: ffmpeg and GStreamer ----------------------------------------


def _spawn(argv: list[str], log_path: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start `argv` with stderr to `log_path`. util-linux's setpriv (essential on
    Debian) makes Linux SIGTERM it when the thread that started it ends, so that a
    killed test run leaves no orphan ffmpeg."""
    setpriv = shutil.which("setpriv")
    guard = [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [*guard, *argv], stdin=subprocess.DEVNULL, stderr=log, **kwargs
        )


def _terminate(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def _log_tail(log_path: Path, lines: int = 15) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def ffmpeg_missing_reason() -> str | None:
    """Why HlsServer cannot run here, naming the install command; None if it can."""
    if shutil.which("ffmpeg") is None:
        return f"ffmpeg is not on PATH; {FFMPEG_HINT}"
    return None


def require_ffmpeg() -> str:
    """The path of Debian's ffmpeg; ToolMissingError naming the install command
    when it is not on PATH."""
    path = shutil.which("ffmpeg")
    if path is None:
        raise ToolMissingError(f"ffmpeg is not on PATH; {FFMPEG_HINT}")
    return path


@functools.cache
def ffmpeg_has_encoder(name: str) -> bool:
    """Whether `ffmpeg -encoders` lists the encoder `name`."""
    listing = subprocess.run(
        [require_ffmpeg(), "-hide_banner", "-encoders"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return any(line.split()[1:2] == [name] for line in listing.splitlines())


def _run_ffmpeg(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CameraServerError(
            f"ffmpeg exited with {done.returncode} running {' '.join(argv)}:\n"
            f"{done.stderr.strip()[-2000:]}"
        )


def _video_encoder_args() -> list[str]:
    """H.264 (what cameras send) when ffmpeg has libx264, as Debian's does; MPEG-2
    otherwise, which an MPEG-TS segment also carries. One keyframe a second."""
    if ffmpeg_has_encoder("libx264"):
        return [
            *("-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"),
            *("-pix_fmt", "yuv420p", "-g", "10"),
        ]
    return ["-c:v", "mpeg2video", "-q:v", "4", "-g", "10"]


# --- HLS ----------------------------------------------------------------------------


HLS_CONTENT_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t"}


class _HlsHandler(http.server.SimpleHTTPRequestHandler):
    def guess_type(self, path: str | os.PathLike[str]) -> str:
        suffix = Path(path).suffix
        return HLS_CONTENT_TYPES.get(suffix) or super().guess_type(path)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay silent: pytest output is for the tests."""

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


class HlsServer(_CameraServer):
    """A live HLS camera: ffmpeg plays `video` in a loop in real time and writes
    `live.m3u8` with `list_size` segments of `segment_s` seconds into a temporary
    folder that a loopback HTTP server serves.

    `start()` returns once the playlist lists `min_segments` segments (about that
    many seconds). Needs Debian's ffmpeg; ToolMissingError says how to install it.
    """

    default_path = "/live.m3u8"

    def __init__(
        self,
        video: Path = VTEST,
        *,
        port: int | None = None,
        segment_s: int = 1,
        list_size: int = 5,
        min_segments: int = 2,
        start_timeout_s: float = 20.0,
    ) -> None:
        super().__init__(port, auth=None)
        self.video = video
        self.segment_s = segment_s
        self.list_size = list_size
        self.min_segments = min_segments
        self.start_timeout_s = start_timeout_s
        self.workdir: Path | None = None
        self._ffmpeg: subprocess.Popen[bytes] | None = None
        self._httpd: _LoopbackHttpServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._httpd is not None:
            return
        ffmpeg = require_ffmpeg()
        workdir = Path(tempfile.mkdtemp(prefix="pantau-hls-"))
        self.workdir = workdir
        playlist = workdir / "live.m3u8"
        log_path = workdir / "ffmpeg.log"
        try:
            self._ffmpeg = _spawn(
                [
                    *(ffmpeg, "-hide_banner", "-loglevel", "warning", "-nostdin"),
                    *("-re", "-stream_loop", "-1", "-i", str(self.video), "-an"),
                    *_video_encoder_args(),
                    *("-f", "hls", "-hls_time", str(self.segment_s)),
                    *("-hls_list_size", str(self.list_size)),
                    *("-hls_flags", "delete_segments+temp_file"),
                    *("-hls_segment_filename", str(workdir / "segment-%05d.ts")),
                    str(playlist),
                ],
                log_path,
                stdout=subprocess.DEVNULL,
            )
            handler = functools.partial(_HlsHandler, directory=str(workdir))
            self._httpd = _LoopbackHttpServer(self.port, handler)
            self._thread = self._httpd.serve_in_thread(f"hls-camera-{self.port}")
            self._wait_for_segments(playlist, log_path)
        except BaseException:
            self.stop()
            raise

    def _wait_for_segments(self, playlist: Path, log_path: Path) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            assert self._ffmpeg is not None
            if self._ffmpeg.poll() is not None:
                raise CameraServerError(
                    f"ffmpeg exited with {self._ffmpeg.returncode} before writing "
                    f"the HLS playlist; its log ends:\n{_log_tail(log_path)}"
                )
            try:
                listed = playlist.read_text().count("#EXTINF")
            except FileNotFoundError:
                listed = 0
            if listed >= self.min_segments:
                return
            time.sleep(0.1)
        raise CameraServerError(
            f"the HLS playlist {playlist} did not list {self.min_segments} segments "
            f"within {self.start_timeout_s} s; ffmpeg's log ends:\n"
            f"{_log_tail(log_path)}"
        )

    def _halt(self, *, keep_files: bool) -> None:
        _terminate(self._ffmpeg)
        self._ffmpeg = None
        if self._httpd is not None:
            self._httpd.halt(self._thread)
        self._httpd = None
        self._thread = None
        # A restarted ffmpeg starts a new playlist, so nothing is worth keeping.
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir = None


# --- RTSP ---------------------------------------------------------------------------

# Run by Debian's python3 with argv: clip, port, mount, user, password. Prints
# "READY <port>" once it listens; quits on SIGTERM.
_GST_RTSP_SCRIPT = """
import signal, sys
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer

clip, port, mount, user, password = sys.argv[1:6]
Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    '( filesrc location="' + clip + '" ! matroskademux '
    "! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )"
)
factory.set_shared(True)
if user:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "viewer")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_permission_for_role("viewer", "media.factory.access", True)
    permissions.add_permission_for_role("viewer", "media.factory.construct", True)
    factory.set_permissions(permissions)
server.get_mount_points().add_factory(mount, factory)
if server.attach(None) == 0:
    sys.exit("cannot listen on 127.0.0.1:" + port)
print("READY", server.get_bound_port(), flush=True)
loop = GLib.MainLoop()
GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
loop.run()
"""

_GST_PROBE = """
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer
Gst.init(None)
missing = [name for name in ("filesrc", "matroskademux", "h264parse", "rtph264pay")
           if Gst.ElementFactory.find(name) is None]
if missing:
    raise SystemExit("missing GStreamer elements: " + " ".join(missing))
"""


@functools.cache
def rtsp_missing_reason() -> str | None:
    """Why RtspServer cannot run here, naming what to install; None when it can."""
    reason = ffmpeg_missing_reason()
    if reason is not None:
        return reason
    if not ffmpeg_has_encoder("libx264"):
        return "RtspServer needs ffmpeg with libx264, as Debian's ffmpeg package has"
    if not Path(SYSTEM_PYTHON).is_file():
        return f"{SYSTEM_PYTHON} is missing; {RTSP_HINT}"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", _GST_PROBE], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        detail = probe.stderr.strip().splitlines()[-1:] or [probe.stdout.strip()]
        return f"GStreamer's RTSP server is not usable ({detail[0]}); {RTSP_HINT}"
    return None


class RtspServer(_CameraServer):
    """An RTSP camera (H.264 over RTP, TCP or UDP) at `rtsp://127.0.0.1:PORT/live`.

    ffmpeg encodes the first `clip_s` seconds of `video` once and repeats them
    `loops` times into a clip; GStreamer's RTSP server plays that clip in real
    time, shared by all clients like a camera. The clip runs clip_s * loops
    seconds from the first client's connection; then the stream ends. With
    `auth=(user, password)` DESCRIBE without them gets 401.
    """

    default_path = "/live"
    scheme = "rtsp"

    def __init__(
        self,
        video: Path = VTEST,
        *,
        port: int | None = None,
        auth: Credentials | None = None,
        clip_s: float = 20.0,
        loops: int = 15,
        start_timeout_s: float = 20.0,
    ) -> None:
        super().__init__(port, auth)
        self.video = video
        self.clip_s = clip_s
        self.loops = loops
        self.start_timeout_s = start_timeout_s
        self.workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self._process is not None:
            return
        reason = rtsp_missing_reason()
        if reason is not None:
            raise ToolMissingError(reason)
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="pantau-rtsp-"))
        try:
            clip = self._encode_clip(self.workdir)
            self._serve(clip, self.workdir / "gst-rtsp.log")
        except BaseException:
            self.stop()
            raise

    def _encode_clip(self, workdir: Path) -> Path:
        clip = workdir / "clip.mkv"
        if clip.is_file():
            return clip
        once = workdir / "once.mkv"
        ffmpeg = require_ffmpeg()
        quiet = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
        _run_ffmpeg(
            [
                *(*quiet, "-t", str(self.clip_s), "-i", str(self.video), "-an"),
                *(*_video_encoder_args(), str(once)),
            ]
        )
        _run_ffmpeg(
            [
                *(*quiet, "-stream_loop", str(self.loops - 1), "-i", str(once)),
                *("-c", "copy", str(clip)),
            ]
        )
        once.unlink()
        return clip

    def _serve(self, clip: Path, log_path: Path) -> None:
        user, password = self.auth if self.auth is not None else ("", "")
        self._process = _spawn(
            [
                *(SYSTEM_PYTHON, "-c", _GST_RTSP_SCRIPT, str(clip), str(self.port)),
                *(self.default_path, user, password),
            ],
            log_path,
            stdout=subprocess.PIPE,
        )
        stdout = self._process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], self.start_timeout_s)
        line = stdout.readline() if ready else b""
        if not line.startswith(b"READY"):
            code = self._process.poll()
            raise CameraServerError(
                f"GStreamer's RTSP server did not listen on port {self.port} within "
                f"{self.start_timeout_s} s (exit status {code}); its log ends:\n"
                f"{_log_tail(log_path)}"
            )

    def _halt(self, *, keep_files: bool) -> None:
        _terminate(self._process)
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()
        self._process = None
        if not keep_files and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
