"""The monitoring page's HTTP server (aiohttp) on loopback: the page, its
static files, JSON from ClickHouse, and the cameras' latest annotated frames."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

from pantau.clickhouse import ClickHouseUnavailableError
from pantau.web import queries
from pantau.web.frames import LatestFrames
from stream_apps.analytics import TIMEZONE

log = logging.getLogger("pantau.web")

_STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


class BadRequestError(ValueError):
    """A query-string value the page cannot use."""


def _date(request: web.Request) -> dt.date:
    raw = request.query.get("date", "")
    if not raw:
        return dt.datetime.now(ZoneInfo(TIMEZONE)).date()
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise BadRequestError(f"date: expected YYYY-MM-DD, got {raw[:40]!r}") from None


def _kecamatan(request: web.Request) -> str:
    value = request.query.get("kecamatan", "")
    if len(value) > 100:
        raise BadRequestError("kecamatan: expected at most 100 characters")
    return value


def _json_ready(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return int(aware.timestamp() * 1000)
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return value


class PageServer:
    """Routes of the page, bound to one ClickHouse client and frame cache."""

    def __init__(
        self,
        *,
        connect: Callable[[], Client],
        database: str,
        frames: LatestFrames,
        chartjs: Path,
        refresh_s: float,
    ) -> None:
        self._connect = connect
        self._client: Client | None = None
        self._database = database
        self._frames = frames
        self._chartjs = chartjs
        self._refresh_s = refresh_s
        # clickhouse-connect clients are not for concurrent use: one thread.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="web-clickhouse")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/vendor/chart.umd.min.js", self._chart_library)
        app.router.add_get("/api/config", self._config)
        app.router.add_get("/api/cameras", self._cameras)
        app.router.add_get("/api/mobility", self._mobility)
        app.router.add_get("/api/regions", self._regions)
        app.router.add_get("/api/alerts", self._alerts)
        app.router.add_get("/api/kecamatan", self._kecamatan_list)
        app.router.add_get("/frames/{camera}.jpg", self._frame)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, _app: web.Application) -> None:
        self._executor.shutdown(wait=False)

    def _query(self, sql: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            if self._client is None:
                self._client = self._connect()
            result = self._client.query(
                sql.replace("{database}", self._database), parameters=parameters
            )
        except (ClickHouseError, ClickHouseUnavailableError):
            self._client = None
            raise
        return [
            {
                name: _json_ready(value)
                for name, value in zip(result.column_names, row, strict=True)
            }
            for row in result.result_rows
        ]

    async def _rows(
        self, request: web.Request, sql: str, parameters: dict[str, Any]
    ) -> web.Response:
        loop = asyncio.get_running_loop()
        try:
            rows = await loop.run_in_executor(
                self._executor, self._query, sql, parameters
            )
        except (OperationalError, ClickHouseUnavailableError) as error:
            log.warning("ClickHouse unreachable path=%s error=%s", request.path, error)
            return web.json_response(
                {"error": "ClickHouse is not answering; retrying", "rows": []},
                status=503,
            )
        except ClickHouseError as error:
            log.error("page query failed path=%s error=%s", request.path, error)
            return web.json_response(
                {"error": f"query failed: {str(error)[:300]}", "rows": []},
                status=500,
            )
        return web.json_response({"rows": rows})

    async def _page(self, _request: web.Request) -> web.Response:
        return self._package_file("index.html")

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if "/" in name or name.startswith(".") or name == "index.html":
            raise web.HTTPNotFound()
        return self._package_file(name)

    def _package_file(self, name: str) -> web.Response:
        suffix = Path(name).suffix
        if suffix not in _STATIC_TYPES:
            raise web.HTTPNotFound()
        entry = resources.files("pantau.web").joinpath("static", name)
        if not entry.is_file():
            raise web.HTTPNotFound()
        return web.Response(
            body=entry.read_bytes(),
            headers={"Content-Type": _STATIC_TYPES[suffix]},
        )

    async def _chart_library(self, _request: web.Request) -> web.FileResponse:
        return web.FileResponse(
            self._chartjs, headers={"Content-Type": _STATIC_TYPES[".js"]}
        )

    async def _config(self, _request: web.Request) -> web.Response:
        today = dt.datetime.now(ZoneInfo(TIMEZONE)).date()
        return web.json_response(
            {
                "refresh_s": self._refresh_s,
                "today": today.isoformat(),
                "timezone": TIMEZONE,
            }
        )

    async def _cameras(self, request: web.Request) -> web.Response:
        try:
            kecamatan = _kecamatan(request)
        except BadRequestError as error:
            raise web.HTTPBadRequest(text=str(error)) from None
        response = await self._rows(request, queries.CAMERAS, {"kecamatan": kecamatan})
        return response

    async def _mobility(self, request: web.Request) -> web.Response:
        try:
            parameters = {"kecamatan": _kecamatan(request), "date": _date(request)}
        except BadRequestError as error:
            raise web.HTTPBadRequest(text=str(error)) from None
        return await self._rows(request, queries.MOBILITY, parameters)

    async def _regions(self, request: web.Request) -> web.Response:
        try:
            parameters = {"kecamatan": _kecamatan(request), "date": _date(request)}
        except BadRequestError as error:
            raise web.HTTPBadRequest(text=str(error)) from None
        return await self._rows(request, queries.REGIONS, parameters)

    async def _alerts(self, request: web.Request) -> web.Response:
        return await self._rows(request, queries.ALERTS, {})

    async def _kecamatan_list(self, request: web.Request) -> web.Response:
        return await self._rows(request, queries.KECAMATAN_LIST, {})

    async def _frame(self, request: web.Request) -> web.Response:
        frame = self._frames.get(request.match_info["camera"])
        if frame is None:
            raise web.HTTPNotFound(text="no annotated frame of this camera yet")
        return web.Response(
            body=frame.image,
            headers={
                "Content-Type": frame.content_type,
                "Cache-Control": "no-store",
                "X-Captured-At-Ms": str(frame.captured_at_ms),
            },
        )


async def serve(
    server: PageServer, host: str, port: int, stop: threading.Event
) -> None:
    """Serve until ``stop`` is set."""
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("monitoring page ready url=http://%s:%s/", host, port)
    try:
        while not stop.is_set():
            await asyncio.sleep(0.2)
    finally:
        await runner.cleanup()
        log.info("monitoring page stopped")
